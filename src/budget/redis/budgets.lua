-- llmledger's shared budgets: one script, one operation per call (ARGV[1]), run atomically
-- by Redis. Every key of one tracker's budgets carries the same hash tag ({prefix}), so the
-- script works on a Redis Cluster (all of them live in one slot).
--
-- Money is integer pico-dollars (1e-12 USD), kept as decimal strings and added here as
-- (dollars, pico) pairs, so no amount ever passes through a float (Lua's numbers are
-- doubles: exact only up to 2^53).
--
-- Keys (P = '{prefix}:'):
--   P..'leases'            ZSET run id -> lease expiry (ms, Redis clock): live reservations
--   P..'r:'..run           HASH amt, keys (counter keys, one a line), st ('r' held, 'd' done)
--   P..'w:'..budget..':'..window..':'..value   HASH spent, reserved, fired, blocked, lo, s:N
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

local op, prefix = ARGV[1], ARGV[2]
local leases = KEYS[1]

-- Expired reservations give their amount back: a process that died holding them blocks
-- nothing past its lease. Done inside every operation, a few at a time (no sweeper).
local function reclaim(now)
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 64)
  for _, run in ipairs(expired) do
    local rk = prefix .. 'r:' .. run
    local f = redis.call('HMGET', rk, 'amt', 'keys', 'st')
    if f[1] and f[3] == 'r' then
      local amt = P(f[1])
      for k in string.gmatch(f[2] or '', '[^\n]+') do
        if redis.call('EXISTS', k) == 1 then
          redis.call('HSET', k, 'reserved', S(sub(P(redis.call('HGET', k, 'reserved')), amt)))
        end
      end
      redis.call('DEL', rk)
    end
    redis.call('ZREM', leases, run)
  end
end

local function part(i)
  local o = 11 + (i - 1) * 6
  return {
    kind = ARGV[o + 1], a = tonumber(ARGV[o + 2]), b = tonumber(ARGV[o + 3]),
    limit = P(ARGV[o + 4]), blocks = tonumber(ARGV[o + 5]), thr = ARGV[o + 6],
    key = KEYS[3 + (i - 1) * 3], marker = KEYS[4 + (i - 1) * 3], vals = KEYS[5 + (i - 1) * 3],
  }
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

-- Drops a rolling window's slots that have left it; returns the spend in it.
local function roll(p, now)
  local k = p.key
  local f = redis.call('HMGET', k, 'spent', 'lo')
  local spent = P(f[1])
  if p.kind ~= 'r' then return spent end
  local lo = tonumber(f[2] or '')
  local cut = math.floor((now - p.a) / p.b)
  if not lo or lo >= cut then return spent end
  if cut - lo > 1024 then
    for _, f in ipairs(redis.call('HKEYS', k)) do
      if string.sub(f, 1, 2) == 's:' and tonumber(string.sub(f, 3)) < cut then
        spent = sub(spent, P(redis.call('HGET', k, f)))
        redis.call('HDEL', k, f)
      end
    end
  else
    for i = lo, cut - 1 do
      local v = redis.call('HGET', k, 's:' .. i)
      if v then
        spent = sub(spent, P(v))
        redis.call('HDEL', k, 's:' .. i)
      end
    end
  end
  redis.call('HSET', k, 'spent', S(spent), 'lo', cut)
  return spent
end

-- Keeps a counter (and its window's marker and values set) until its window has ended.
local function keep(p, grace, new)
  if p.kind == 'c' then
    -- A calendar window's end is fixed: its keys get their expiry when created.
    if not new then return end
    redis.call('PEXPIREAT', p.key, p.b + grace)
    redis.call('PEXPIREAT', p.vals, p.b + grace)
  elseif p.kind == 'r' then
    redis.call('PEXPIRE', p.key, p.a + grace)
    redis.call('PEXPIRE', p.vals, p.a + grace)
    if redis.call('EXISTS', p.marker) == 1 then redis.call('PEXPIRE', p.marker, p.a + grace) end
  end
end

local function created(p)
  if redis.call('EXISTS', p.key) == 0 then
    redis.call('HSET', p.key, 'spent', '0', 'reserved', '0', 'fired', '0')
    redis.call('SADD', p.vals, p.key)
    return true
  end
  return false
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
-- window still waits to be seeded from the ledger. nil when all is well.
local function checks(n, now, with_clock)
  for i = 1, n do
    local p = part(i)
    if with_clock and p.kind == 'c' and (now < p.a or now >= p.b) then
      return {'clock', tostring(now)}
    end
    if ARGV[7] == '1' and p.kind ~= 'l' and redis.call('EXISTS', p.marker) == 0 then
      return {'seed', tostring(i - 1), tostring(now)}
    end
  end
  return nil
end

local function release_held(rk)
  local f = redis.call('HMGET', rk, 'amt', 'keys', 'st')
  if f[1] and f[3] == 'r' then
    local amt = P(f[1])
    for k in string.gmatch(f[2] or '', '[^\n]+') do
      if redis.call('EXISTS', k) == 1 then
        redis.call('HSET', k, 'reserved', S(sub(P(redis.call('HGET', k, 'reserved')), amt)))
      end
    end
  end
  redis.call('ZREM', leases, ARGV[3])
end

local now = now_ms()
reclaim(now)
local rk = KEYS[2]
local n = tonumber(ARGV[8])
local grace = tonumber(ARGV[6])

if op == 'reserve' then
  local st = redis.call('HGET', rk, 'st')
  if st then return {'ok', 'again'} end
  local bad = checks(n, now, true)
  if bad then return bad end
  local amt = P(ARGV[4])
  local ps, res, new = {}, {}, {}
  for i = 1, n do
    local p = part(i)
    ps[i] = p
    new[i] = created(p)
    local spent = roll(p, now)
    local reserved = P(redis.call('HGET', p.key, 'reserved'))
    res[i] = reserved
    if p.blocks > 0 and gt(add(add(spent, reserved), amt), p.limit) then
      local due = block_alert_due(p, now)
      for j = 1, i do keep(ps[j], grace, new[j]) end
      return {'refused', tostring(i - 1), S(spent), S(reserved), tostring(due),
        redis.call('HGET', p.key, 'lo') or '', tostring(now)}
    end
  end
  local keys = {}
  for i = 1, n do
    local p = ps[i]
    redis.call('HSET', p.key, 'reserved', S(add(res[i], amt)))
    keep(p, grace, new[i])
    keys[#keys + 1] = p.key
  end
  -- No expiry while held: the lease (and the reclaim that follows it) is its end, so its
  -- amount is always given back.
  redis.call('HSET', rk, 'amt', ARGV[4], 'keys', table.concat(keys, '\n'), 'st', 'r')
  redis.call('ZADD', leases, now + tonumber(ARGV[5]), ARGV[3])
  return {'ok', tostring(now)}
end

if op == 'grow' then
  -- The parts are the reservation's own counters (the windows it was reserved in).
  local f = redis.call('HMGET', rk, 'amt', 'st')
  if f[2] ~= 'r' then return {'gone'} end
  local delta = P(ARGV[4])
  local over = nil
  for i = 1, n do
    local p = part(i)
    if redis.call('EXISTS', p.key) == 1 then
      local spent = roll(p, now)
      local reserved = add(P(redis.call('HGET', p.key, 'reserved')), delta)
      redis.call('HSET', p.key, 'reserved', S(reserved))
      if not over and p.blocks == 2 and gt(add(spent, reserved), p.limit) then
        over = {'over', tostring(i - 1), S(spent), S(sub(reserved, delta)),
          tostring(block_alert_due(p, now)), redis.call('HGET', p.key, 'lo') or '', tostring(now)}
      end
    end
  end
  redis.call('HSET', rk, 'amt', S(add(P(f[1]), delta)))
  redis.call('ZADD', leases, now + tonumber(ARGV[5]), ARGV[3])
  return over or {'ok'}
end

if op == 'settle' then
  -- Settling twice, or after a release, changes nothing.
  if redis.call('HGET', rk, 'st') == 'd' then return {'done'} end
  local spend = ARGV[4] ~= ''
  local at = now
  if ARGV[9] ~= '' then at = tonumber(ARGV[9]) end
  if spend then
    local bad = checks(n, now, ARGV[9] == '')
    if bad then return bad end
  end
  release_held(rk)
  local out = {'ok'}
  if spend then
    local amt = P(ARGV[4])
    local rec = tonumber(ARGV[10])
    for i = 1, n do
      local p = part(i)
      -- A window seeded from the ledger after this call ended already counts it.
      local seeded = tonumber(redis.call('GET', p.marker) or '')
      if not (seeded and rec < seeded) then
        local new = created(p)
        local before = roll(p, at)
        local spent = add(before, amt)
        redis.call('HSET', p.key, 'spent', S(spent))
        if p.kind == 'r' then
          local slot = math.floor(at / p.b)
          local f = 's:' .. slot
          redis.call('HSET', p.key, f, S(add(P(redis.call('HGET', p.key, f)), amt)))
          local lo = tonumber(redis.call('HGET', p.key, 'lo') or '')
          if not lo or slot < lo then redis.call('HSET', p.key, 'lo', slot) end
        end
        local stored = tonumber(redis.call('HGET', p.key, 'fired') or '0')
        local fired = stored
        if p.kind == 'r' then fired = math.min(fired, reached(p.thr, before)) end
        local r = reached(p.thr, spent)
        if math.max(r, fired) ~= stored then redis.call('HSET', p.key, 'fired', math.max(r, fired)) end
        if r > fired then
          out[#out + 1] = tostring(i - 1)
          out[#out + 1] = tostring(r)
          out[#out + 1] = S(spent)
          out[#out + 1] = redis.call('HGET', p.key, 'reserved')
        end
        keep(p, grace, new)
      end
    end
  end
  redis.call('DEL', rk)
  redis.call('HSET', rk, 'st', 'd')
  redis.call('PEXPIRE', rk, tonumber(ARGV[11]))
  return out
end

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
  local p = {kind = ARGV[12], a = tonumber(ARGV[13]), b = tonumber(ARGV[14])}
  local out = {tostring(now)}
  for _, k in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    if redis.call('EXISTS', k) == 1 then
      p.key = k
      local spent = roll(p, now)
      out[#out + 1] = k
      out[#out + 1] = S(spent)
      out[#out + 1] = redis.call('HGET', k, 'reserved') or '0'
      out[#out + 1] = redis.call('HGET', k, 'lo') or ''
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
