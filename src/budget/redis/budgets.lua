-- llmledger's shared budgets: one script, one operation per call (ARGV[1]), run atomically
-- by Redis. Every key of one tracker's budgets carries the same hash tag ({prefix}), so the
-- script works on a Redis Cluster (all of them live in one slot).
--
-- Money is integer pico-dollars (1e-12 USD), kept as decimal strings and added here as
-- (dollars, pico) pairs, so no amount ever passes through a float (Lua's numbers are
-- doubles: exact only up to 2^53).
--
-- Each redis.call costs several microseconds of Redis's one thread, more than the Lua around
-- it, so the operations a call makes (reserve, settle) read each counter with one HMGET and
-- write it with one HSET, and keys that differ are asked together (EXISTS, MGET). A call's
-- reserve is 5 + 2 per budget redis.calls, its settle 6 + 2 per budget. Lua's own work costs
-- as much (measured by callgrind on redis-server: each argument about 0.9k instructions, each
-- tonumber 2k, each table 1k+, each HMGET field returned 2.5k), so the settlements a process has
-- queued and its next reservation go as one run ('batch', below: the script's fixed cost and
-- TIME once), and numbers are parsed only when used.
--
-- Keys (P = '{prefix}:'):
--   P..'leases'            ZSET run id -> lease expiry (ms, Redis clock): live reservations
--   P..'r:'..run           HASH amt, keys (counter keys, one a line), st ('r' held, 'd' done)
--   P..'w:'..budget..':'..window..':'..value   HASH spent, reserved, fired, blocked, lo, s:N,
--                          x (rolling windows: when its expiry was last pushed, ms)
--   P..'m:'..budget..':'..window  STRING: the window was seeded from the ledger (the time)
--   P..'v:'..budget..':'..window  SET of the window's counter keys (for state and reset)
--
-- Common ARGV: 1 op, 2 prefix ('{prefix}:'), 3 run id, 4 amount (pico, '' none),
-- 5 lease (ms), 6 grace (ms, how long a key outlives its window), 7 seed (1: a missing
-- window must be seeded first), 8 parts, 9 at (ms; '' = now, and calendar windows are
-- checked against the clock), 10 record time (ms), 11 done ttl (ms); then 6 per part:
-- kind ('c' calendar, 'r' rolling, 'l' lifetime), a (c: start ms, r: length ms), b (c: end
-- ms, r: slot ms), limit (pico), blocks (0/1; 2: blocks and cuts streams), thresholds
-- (pico, comma-separated, ascending).
-- KEYS: 1 leases, 2 reservation, then 3 per part: counter, marker, values set.

local E = 1000000000000

local function P(s)
  if not s then return {0, 0} end
  local n = #s
  if n <= 12 then return {0, tonumber(s)} end
  return {tonumber(string.sub(s, 1, n - 12)), tonumber(string.sub(s, n - 11))}
end

local function S(a)
  if a[1] == 0 then return string.format('%d', a[2]) end
  return string.format('%d%012d', a[1], a[2])
end

local function add(a, b)
  local d, p = a[1] + b[1], a[2] + b[2]
  if p >= E then d, p = d + 1, p - E end
  return {d, p}
end

local function sub(a, b)
  local d, p = a[1] - b[1], a[2] - b[2]
  if p < 0 then d, p = d - 1, p + E end
  if d < 0 then return {0, 0} end
  return {d, p}
end

local function gt(a, b)
  return a[1] > b[1] or (a[1] == b[1] and a[2] > b[2])
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Runs `cmd key f1 f2 ...` over `fields` in chunks (Lua's unpack has a stack limit);
-- returns the replies one after another.
local function chunked(cmd, key, fields)
  local out = {}
  for i = 1, #fields, 512 do
    local r = redis.call(cmd, key, unpack(fields, i, math.min(i + 511, #fields)))
    if type(r) == 'table' then
      for _, v in ipairs(r) do out[#out + 1] = v end
    end
  end
  return out
end

local op, prefix = ARGV[1], ARGV[2]
local leases = KEYS[1]

-- Gives `amt` back to each counter of `keys` (one a line) that still exists.
local function give_back(keys, amt)
  for k in string.gmatch(keys or '', '[^\n]+') do
    local r = redis.call('HGET', k, 'reserved')
    if r then redis.call('HSET', k, 'reserved', S(sub(P(r), amt))) end
  end
end

-- Expired reservations give their amount back: a process that died holding them blocks
-- nothing past its lease. Done inside the operations that decide or report (reserve, grow,
-- state), a few at a time (no sweeper).
local function reclaim(now)
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 64)
  for _, run in ipairs(expired) do
    local rk = prefix .. 'r:' .. run
    local f = redis.call('HMGET', rk, 'amt', 'keys', 'st')
    if f[1] and f[3] == 'r' then
      give_back(f[2], P(f[1]))
      redis.call('DEL', rk)
    end
    redis.call('ZREM', leases, run)
  end
end

-- Part i of operation o: its spec from ARGV past o.ao, its keys from KEYS past o.ko. The
-- limit (pico) and blocks ('0', '1', '2') stay text until used (a settlement never does).
local function part(o, i)
  local a, k = o.ao + (i - 1) * 6, o.ko + (i - 1) * 3
  return {
    kind = ARGV[a + 1], a = tonumber(ARGV[a + 2]), b = tonumber(ARGV[a + 3]),
    limit = ARGV[a + 4], blocks = ARGV[a + 5], thr = ARGV[a + 6],
    key = KEYS[k + 1], marker = KEYS[k + 2], vals = KEYS[k + 3],
  }
end

local function parts(o)
  local ps = {}
  for i = 1, o.n do ps[i] = part(o, i) end
  return ps
end

-- A counter as one HMGET reads it (`settling`: with its thresholds fired; `extra`: one more
-- field, its value in c.extra). A counter exists when it has a spend or a reservation: every
-- writer sets both. Only a rolling window's counter has `lo` and `x`; each field asked for
-- and each number read costs Redis's thread (a reply string, a strtod), so only those used.
local function read(p, settling, extra)
  local f
  if p.kind == 'r' then
    if extra then
      f = redis.call('HMGET', p.key, 'spent', 'reserved', 'lo', 'x', 'fired', extra)
    elseif settling then
      f = redis.call('HMGET', p.key, 'spent', 'reserved', 'lo', 'x', 'fired')
    else
      f = redis.call('HMGET', p.key, 'spent', 'reserved', 'lo', 'x')
    end
  elseif settling then
    f = redis.call('HMGET', p.key, 'spent', 'reserved', 'fired')
  else
    f = redis.call('HMGET', p.key, 'spent', 'reserved')
  end
  local c = {exists = (f[1] or f[2]) and true or false, spent = P(f[1]), reserved = P(f[2])}
  local fired
  if p.kind == 'r' then
    c.lo = f[3] and tonumber(f[3])
    c.x = f[4] and tonumber(f[4])
    fired = f[5]
    c.extra = f[6]
  else
    fired = f[3]
  end
  if not fired or fired == '0' then c.fired = 0 else c.fired = tonumber(fired) or 0 end
  return c
end

local function lo_text(c)
  if c.lo then return string.format('%d', c.lo) end
  return ''
end

-- How many thresholds `spent` has reached.
local function reached(thr, spent)
  local n = 0
  for t in string.gmatch(thr, '[^,]+') do
    if gt(P(t), spent) then break end
    n = n + 1
  end
  return n
end

-- Drops a rolling window's slots that have left it, from the counter as read (c.spent and
-- c.lo change; c.rolled says the caller must write them).
local function roll(p, c, now)
  if p.kind ~= 'r' or not c.lo then return end
  local cut = math.floor((now - p.a) / p.b)
  if c.lo >= cut then return end
  local fields = {}
  if cut - c.lo > 1024 then
    for _, f in ipairs(redis.call('HKEYS', p.key)) do
      if string.sub(f, 1, 2) == 's:' and tonumber(string.sub(f, 3)) < cut then
        fields[#fields + 1] = f
      end
    end
  else
    for i = c.lo, cut - 1 do fields[#fields + 1] = 's:' .. i end
  end
  if #fields > 0 then
    local v = chunked('HMGET', p.key, fields)
    local gone = {}
    for j, f in ipairs(fields) do
      if v[j] then
        c.spent = sub(c.spent, P(v[j]))
        gone[#gone + 1] = f
      end
    end
    if #gone > 0 then chunked('HDEL', p.key, gone) end
  end
  c.lo = cut
  c.rolled = true
end

-- The fields a write of counter c carries besides its own: a new counter's zeros, a roll's
-- spend and low slot, and for a rolling window the time its expiry is pushed (when due).
-- Returns whether the keys' expiry must be set after the write (see expire).
local function common(p, c, f, now, grace)
  if not c.exists and not c.fired_set then
    f[#f + 1] = 'fired'
    f[#f + 1] = '0'
  end
  if c.rolled then
    f[#f + 1] = 'lo'
    f[#f + 1] = c.lo
  end
  if p.kind == 'c' then return not c.exists end
  -- A rolling window's keys are kept until `grace` past its last spend's window; pushing
  -- their expiry on every call would cost three redis.calls, so it is pushed when half the
  -- grace has gone by since the last push (they always outlive the window by half of it).
  if p.kind == 'r' and (not c.exists or not c.x or now - c.x >= grace / 2) then
    f[#f + 1] = 'x'
    f[#f + 1] = now
    return true
  end
  return false
end

-- Sets the expiry of a counter, its window's values set and marker, after the write that
-- created or touched them: a calendar window's end is fixed, a rolling window's follows it.
local function expire(p, grace)
  if p.kind == 'c' then
    redis.call('PEXPIREAT', p.key, p.b + grace)
    redis.call('PEXPIREAT', p.vals, p.b + grace)
  elseif p.kind == 'r' then
    redis.call('PEXPIRE', p.key, p.a + grace)
    redis.call('PEXPIRE', p.vals, p.a + grace)
    if redis.call('EXISTS', p.marker) == 1 then redis.call('PEXPIRE', p.marker, p.a + grace) end
  end
end

-- Writes counter c with the fields `f` (and what `common` adds); a new one joins its
-- window's values set.
local function write(p, c, f, now, grace)
  local due = common(p, c, f, now, grace)
  redis.call('HSET', p.key, unpack(f))
  if not c.exists then redis.call('SADD', p.vals, p.key) end
  if due then expire(p, grace) end
end

-- Whether a refusal now should alert: once per window (rolling: per window length).
local function block_alert_due(p, now)
  if p.kind == 'r' then
    local b = tonumber(redis.call('HGET', p.key, 'blocked') or '')
    if b and now - b < p.a then return 0 end
    redis.call('HSET', p.key, 'blocked', now)
    return 1
  end
  return redis.call('HSETNX', p.key, 'blocked', now)
end

-- Checks that the caller computed every calendar window at Redis's time, and that no
-- window still waits to be seeded from the ledger (`marks`: the markers' values, when read
-- already). nil when all is well; else the first part (in order) that is not.
local function checks(o, ps, now, with_clock, marks)
  local clock, want = nil, {}
  for i, p in ipairs(ps) do
    if not clock and with_clock and p.kind == 'c' and (now < p.a or now >= p.b) then clock = i end
    if o.seed == '1' and p.kind ~= 'l' then want[#want + 1] = i end
  end
  local seed = nil
  if #want > 0 then
    if marks then
      for _, i in ipairs(want) do
        if not marks[i] then seed = i break end
      end
    else
      local ks = {}
      for j, i in ipairs(want) do ks[j] = ps[i].marker end
      if redis.call('EXISTS', unpack(ks)) ~= #ks then
        for j, i in ipairs(want) do
          if redis.call('EXISTS', ks[j]) == 0 then seed = i break end
        end
      end
    end
  end
  if seed and (not clock or seed < clock) then
    return {'seed', tostring(seed - 1), tostring(now)}
  end
  if clock then return {'clock', tostring(now)} end
  return nil
end

local now = now_ms()
local grace

-- An operation's own arguments: run id, amount, lease (ms), seed flag, parts, at, record
-- time, done ttl, its reservation key, and where its parts' specs (ao) and keys (ko) start.
local function single()
  return {
    run = ARGV[3], amount = ARGV[4], lease = ARGV[5], seed = ARGV[7], n = tonumber(ARGV[8]),
    at = ARGV[9], rec = ARGV[10], ttl = ARGV[11], rk = KEYS[2], ao = 11, ko = 2,
  }
end

local function reserve(o)
  local rk = o.rk
  reclaim(now)
  if redis.call('HGET', rk, 'st') then return {'ok', 'again'} end
  local ps = parts(o)
  local bad = checks(o, ps, now, true, nil)
  if bad then return bad end
  local amt = P(o.amount)
  local cs = {}
  for i, p in ipairs(ps) do
    local c = read(p)
    cs[i] = c
    roll(p, c, now)
    if p.blocks ~= '0' and gt(add(add(c.spent, c.reserved), amt), P(p.limit)) then
      -- Refused: the counters read so far are written as they are now (rolled, created).
      for j = 1, i do
        local cj = cs[j]
        if cj.rolled or not cj.exists then
          write(ps[j], cj, {'spent', S(cj.spent), 'reserved', S(cj.reserved)}, now, grace)
        end
      end
      local due = block_alert_due(p, now)
      return {'refused', tostring(i - 1), S(c.spent), S(c.reserved), tostring(due), lo_text(c),
        tostring(now)}
    end
  end
  local keys = {}
  for i, p in ipairs(ps) do
    local c = cs[i]
    local f = {'reserved', S(add(c.reserved, amt))}
    if c.rolled or not c.exists then
      f[#f + 1] = 'spent'
      f[#f + 1] = S(c.spent)
    end
    write(p, c, f, now, grace)
    keys[#keys + 1] = p.key
  end
  -- No expiry while held: the lease (and the reclaim that follows it) is its end, so its
  -- amount is always given back.
  redis.call('HSET', rk, 'amt', o.amount, 'keys', table.concat(keys, '\n'), 'st', 'r')
  redis.call('ZADD', leases, now + tonumber(o.lease), o.run)
  return {'ok', tostring(now)}
end

local function grow(o)
  local rk = o.rk
  -- The parts are the reservation's own counters (the windows it was reserved in).
  reclaim(now)
  local f = redis.call('HMGET', rk, 'amt', 'st')
  if f[2] ~= 'r' then return {'gone'} end
  local delta = P(o.amount)
  local over = nil
  for i, p in ipairs(parts(o)) do
    local c = read(p)
    if c.exists then
      roll(p, c, now)
      local reserved = add(c.reserved, delta)
      local w = {'reserved', S(reserved)}
      if c.rolled then
        w[#w + 1] = 'spent'
        w[#w + 1] = S(c.spent)
      end
      write(p, c, w, now, grace)
      if not over and p.blocks == '2' and gt(add(c.spent, reserved), P(p.limit)) then
        over = {'over', tostring(i - 1), S(c.spent), S(c.reserved),
          tostring(block_alert_due(p, now)), lo_text(c), tostring(now)}
      end
    end
  end
  redis.call('HSET', rk, 'amt', S(add(P(f[1]), delta)))
  redis.call('ZADD', leases, now + tonumber(o.lease), o.run)
  return over or {'ok'}
end

local function settle(o)
  local rk = o.rk
  -- Settling twice, or after a release, changes nothing.
  local h = redis.call('HMGET', rk, 'st', 'amt', 'keys')
  if h[1] == 'd' then return {'done'} end
  local spend = o.amount ~= ''
  local at = now
  if o.at ~= '' then at = tonumber(o.at) end
  local ps = parts(o)
  local marks = {}
  if spend and o.n > 0 then
    local mk = {}
    for i, p in ipairs(ps) do mk[i] = p.marker end
    marks = redis.call('MGET', unpack(mk))
    local bad = checks(o, ps, now, o.at == '', marks)
    if bad then return bad end
  end
  -- The reservation's amount goes back to each counter it was held in: in the write below
  -- for the counters this settlement spends in, one by one for the others.
  local held, order, hamt = {}, {}, nil
  if h[2] and h[1] == 'r' then
    hamt = P(h[2])
    for k in string.gmatch(h[3] or '', '[^\n]+') do
      held[k] = true
      order[#order + 1] = k
    end
  end
  redis.call('ZREM', leases, o.run)
  local out = {'ok'}
  if spend then
    local amt = P(o.amount)
    local rec = tonumber(o.rec)
    for i, p in ipairs(ps) do
      -- A window seeded from the ledger after this call ended already counts it.
      local seeded = tonumber(marks[i] or '')
      if not (seeded and rec < seeded) then
        local slot, sf = nil, nil
        if p.kind == 'r' then
          slot = math.floor(at / p.b)
          sf = 's:' .. slot
        end
        local c = read(p, true, sf)
        roll(p, c, at)
        if held[p.key] then
          held[p.key] = nil
          if c.exists then c.reserved = sub(c.reserved, hamt) end
        end
        local before = c.spent
        local spent = add(before, amt)
        local f = {'spent', S(spent), 'reserved', S(c.reserved)}
        if p.kind == 'r' then
          f[#f + 1] = sf
          f[#f + 1] = S(add(P(c.extra), amt))
          if not c.lo or slot < c.lo then
            c.lo = slot
            c.rolled = true
          end
        end
        local fired = c.fired
        if p.kind == 'r' then fired = math.min(fired, reached(p.thr, before)) end
        local r = reached(p.thr, spent)
        if not c.exists or math.max(r, fired) ~= c.fired then
          f[#f + 1] = 'fired'
          f[#f + 1] = math.max(r, fired)
          c.fired_set = true
        end
        write(p, c, f, now, grace)
        if r > fired then
          out[#out + 1] = tostring(i - 1)
          out[#out + 1] = tostring(r)
          out[#out + 1] = S(spent)
          out[#out + 1] = S(c.reserved)
        end
      end
    end
  end
  for _, k in ipairs(order) do
    if held[k] then give_back(k, hamt) end
  end
  -- The done marker: the reservation's fields emptied (not deleted and written again).
  if h[1] then
    redis.call('HSET', rk, 'st', 'd', 'amt', '', 'keys', '')
  else
    redis.call('HSET', rk, 'st', 'd')
  end
  redis.call('PEXPIRE', rk, tonumber(o.ttl))
  return out
end


-- Several operations in one run (ARGV 1 'batch'): the settlements a process has queued, and
-- its next reservation, cost one script run instead of one each. ARGV 2 prefix, 3 lease
-- (ms), 4 grace (ms), 5 seed, 6 done ttl (ms), 7 operations; then per operation: op
-- ('settle' or 'reserve'), run id, amount, parts, at, record time, and 6 per part (as for
-- one operation). KEYS 1 leases, then per operation: its reservation, and 3 per part.
-- Returns each operation's reply, in order; each is what the operation alone returns (a
-- settlement that must be seeded or told the clock first changes nothing, as alone).
local function batch()
  local out = {}
  local a, k = 8, 2
  for j = 1, tonumber(ARGV[7]) do
    local o = {
      run = ARGV[a + 1], amount = ARGV[a + 2], lease = ARGV[3], seed = ARGV[5],
      n = tonumber(ARGV[a + 3]), at = ARGV[a + 4], rec = ARGV[a + 5], ttl = ARGV[6],
      rk = KEYS[k], ao = a + 5, ko = k,
    }
    local sub = ARGV[a]
    if sub == 'settle' then
      out[j] = settle(o)
    elseif sub == 'reserve' then
      out[j] = reserve(o)
    else
      return redis.error_reply('llmledger: unknown budget operation in a batch ' .. tostring(sub))
    end
    a = a + 6 + 6 * o.n
    k = k + 1 + 3 * o.n
  end
  return out
end

if op == 'batch' then
  grace = tonumber(ARGV[4])
  return batch()
end
grace = tonumber(ARGV[6])
if op == 'reserve' then return reserve(single()) end
if op == 'grow' then return grow(single()) end
if op == 'settle' then return settle(single()) end

if op == 'seed' then
  -- ARGV 12: seeded-at time (ms); 13..: per counter, its spend ('amt' or, rolling,
  -- 'slot:amt,slot:amt'). KEYS 3: marker, 4: values set, 5..: counters. Part 1's spec
  -- describes the window. Two hosts seeding at once: the second finds the marker, does
  -- nothing.
  local marker, vals = KEYS[3], KEYS[4]
  if redis.call('EXISTS', marker) == 1 then return {'ok', '0'} end
  local kind, a, b = ARGV[12], tonumber(ARGV[13]), tonumber(ARGV[14])
  local thr, seeded = ARGV[15], ARGV[16]
  local exp = nil
  if kind == 'c' then exp = b + grace end
  redis.call('SET', marker, seeded)
  for i = 5, #KEYS do
    local k = KEYS[i]
    if redis.call('EXISTS', k) == 0 then
      local spec = ARGV[17 + i - 5]
      local spent = {0, 0}
      redis.call('HSET', k, 'reserved', '0')
      if kind == 'r' then
        local lo = nil
        for slot, amt in string.gmatch(spec, '(%d+):(%d+)') do
          redis.call('HSET', k, 's:' .. slot, amt)
          spent = add(spent, P(amt))
          if not lo or tonumber(slot) < lo then lo = tonumber(slot) end
        end
        if lo then redis.call('HSET', k, 'lo', lo) end
      else
        spent = P(spec)
      end
      redis.call('HSET', k, 'spent', S(spent), 'fired', reached(thr, spent))
      redis.call('SADD', vals, k)
      if exp then redis.call('PEXPIREAT', k, exp) elseif kind == 'r' then redis.call('PEXPIRE', k, a + grace) end
    end
  end
  if exp then
    redis.call('PEXPIREAT', marker, exp)
    if redis.call('EXISTS', vals) == 1 then redis.call('PEXPIREAT', vals, exp) end
  elseif kind == 'r' then
    redis.call('PEXPIRE', marker, a + grace)
    if redis.call('EXISTS', vals) == 1 then redis.call('PEXPIRE', vals, a + grace) end
  end
  return {'ok', '1'}
end

if op == 'state' then
  -- KEYS 3: the window's values set. ARGV 12..14: kind, a, b. Returns key, spent,
  -- reserved, lo for each counter of the window.
  reclaim(now)
  local out = {tostring(now)}
  for _, k in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    local p = {kind = ARGV[12], a = tonumber(ARGV[13]), b = tonumber(ARGV[14]), key = k}
    local c = read(p)
    if c.exists then
      roll(p, c, now)
      if c.rolled then redis.call('HSET', k, 'spent', S(c.spent), 'lo', c.lo) end
      out[#out + 1] = k
      out[#out + 1] = S(c.spent)
      out[#out + 1] = S(c.reserved)
      out[#out + 1] = lo_text(c)
    else
      redis.call('SREM', KEYS[3], k)
    end
  end
  return out
end

if op == 'reset' then
  -- KEYS 3..: counters whose window spend is cleared (reservations stay).
  for i = 3, #KEYS do
    local k = KEYS[i]
    if redis.call('EXISTS', k) == 1 then
      for _, f in ipairs(redis.call('HKEYS', k)) do
        if string.sub(f, 1, 2) == 's:' or f == 'lo' or f == 'blocked' then redis.call('HDEL', k, f) end
      end
      redis.call('HSET', k, 'spent', '0', 'fired', '0')
    end
  end
  return {'ok'}
end

return redis.error_reply('llmledger: unknown budget operation ' .. tostring(op))
