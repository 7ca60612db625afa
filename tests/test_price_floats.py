"""Prices are exact: a float in a user's price file or `prices=` dict is refused with a
message naming the file, the entry and the field; strings, Decimals and whole numbers work."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from llmledger import CostTracker, PriceCatalogError, cost


def test_float_in_a_price_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "my-prices.json"
    f.write_text('{"in-house-7b": {"input": 0.1, "output": "0.2"}}')
    with pytest.raises(PriceCatalogError) as e:
        CostTracker(prices=f)
    msg = str(e.value)
    assert "my-prices.json" in msg and "in-house-7b" in msg
    assert "'input' is the number 0.1, a float" in msg and '("0.1")' in msg
    toml = tmp_path / "my-prices.toml"
    toml.write_text('["in-house-7b"]\ninput = "0.1"\noutput = 0.2\n')
    with pytest.raises(PriceCatalogError, match="'output' is the number 0.2, a float"):
        cost("in-house-7b", input_tokens=1, prices=toml)


def test_float_in_a_prices_dict_is_refused_decimal_and_int_work() -> None:
    with pytest.raises(PriceCatalogError, match="prices dict.*'input' is the number 0.5, a float"):
        CostTracker(prices={"m": {"input": 0.5, "output": "1"}})
    exact = {"m": {"input": Decimal("0.5"), "output": 2}}
    assert cost("m", input_tokens=1_000_000, output_tokens=1_000_000, prices=exact) == Decimal(
        "2.5"
    )
