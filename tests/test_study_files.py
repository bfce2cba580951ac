"""Study files are validated whole before anything runs: each kind of mistake is refused with the
file, the line and the reason (docs/studies.md)."""

from __future__ import annotations

import pytest

from alpsim.study import StudyError, parse_study
from alpsim.study.spec import seconds

GOOD = """name: good
chain: bnb
seed: 1
paths: 10
horizon: {duration: 2h, step: 1m}
pool: {liquidity: 1_000_000}
prices:
  BTC/USD: {model: gbm, volatility: 0.6}
  ETH/USD: {model: jump, volatility: 0.8, intensity: 10, jump_mean: -0.01, jump_std: 0.02}
correlation: [[1, 0.3], [0.3, 1]]
cohort:
  - {pair: BTC/USD, side: long, leverage: 1001, amount: 100}
"""


def _with(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


def test_the_good_file_parses():
    study = parse_study(GOOD)
    assert study.horizon.duration == 7200 and study.horizon.step == 60 and study.horizon.steps == 120
    assert study.diffusive_pairs == ["BTC/USD", "ETH/USD"]


@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("name: [\n", 2, "not valid YAML"),
    ("", 1, "empty study file"),
    ("- a list\n", 1, "a study is a mapping"),
    (_with("seed: 1\n", "seed: 1\nseed: 2\n"), 4, "duplicate key 'seed'"),
    (_with("paths: 10\n", ""), 1, "missing field 'paths'"),
    (_with("paths: 10", "paths: 0"), 4, "paths: Input should be greater than or equal to 1"),
    (_with("chain: bnb", "chain: solana"), 2, "chain: Input should be 'bnb' or 'arbitrum'"),
    (_with("seed: 1\n", "seed: 1\nagents: {}\n"), 4, "unknown key 'agents'"),
    (_with("duration: 2h", "duration: 2 weeks"), 5, "is not a duration"),
    (_with("step: 1m", "step: 3h"), 5, "step must not exceed duration"),
    (_with("duration: 2h, step: 1m", "duration: 30d, step: 1s"), 5, "at most 100,000 per path"),
    (_with("liquidity: 1_000_000", "liquidity: -5"), 6, "pool.liquidity: Input should be greater than 0"),
    (_with("{model: gbm, volatility: 0.6}", "{model: garch, volatility: 0.6}"), 8, "does not match any of the expected tags"),
    (_with("{model: gbm, volatility: 0.6}", "{model: gbm, volatility: -0.6}"), 8, "greater than or equal to 0"),
    (_with("BTC/USD: {model: gbm", "BTC/USDT: {model: gbm"), 8, "unknown pair or basket asset 'BTC/USDT'"),
    (_with("BTC/USD: {model: gbm", "XRP: {model: gbm"), 8, "unknown pair or basket asset 'XRP'; known: BTC/USD, "
     "ETH/USD, SOL/USD, AAPL/USD, USDT, USDC, BNB"),
    (_with("BTC/USD: {model: gbm, volatility: 0.6}\n", "BTC/USD: {model: gbm, volatility: 0.6}\n  BTC: {model: gbm, "
     "volatility: 0.6}\n"), 9, "BTC the asset is the pair BTC/USD (one price): give its model under BTC/USD"),
    (_with("chain: bnb", "chain: arbitrum").replace("ETH/USD: {model: jump", "BNB: {model: jump"), 9,
     "unknown pair or basket asset 'BNB'"),
    (_with("pool: {liquidity: 1_000_000}\n", "pool: {liquidity: 1_000_000}\nbasket_targets: {USDT: 60, USDC: 30}\n"), 7,
     "basket_targets: the shares must sum to 100 (%), got 90"),
    (_with("pool: {liquidity: 1_000_000}\n", "pool: {liquidity: 1_000_000}\nbasket_targets: {USDT: 90, DAI: 10}\n"),
     7, "basket_targets: 'DAI' is not in bnb's basket; basket assets: USDT, USDC, BNB, ETH, BTC"),
    (_with("pool: {liquidity: 1_000_000}\n", "pool: {liquidity: 1_000_000}\nbasket_targets: {USDT: 99.995, BNB: 0.005}\n"),
     7, "basket_targets.USDT: targets are whole basis points (0.01% steps), got 99.995"),
    (_with("pool: {liquidity: 1_000_000}\n", "pool: {liquidity: 1_000_000}\nbasket_targets: {USDT: 150, BNB: -50}\n"),
     7, "basket_targets.USDT: a share in % from 0 to 100, got 150"),
    (_with("pool: {liquidity: 1_000_000}\n", "pool: {liquidity: 1_000_000}\nlp: {basket: {USDT: 50, BTC: 40}}\n"), 7,
     "lp.basket: the shares must sum to 100 (%), got 90"),
    (_with("pool: {liquidity: 1_000_000}\n", "pool: {liquidity: 1_000_000}\nlp: {basket: {USDT: 50, SOL: 50}}\n"), 7,
     "lp.basket: 'SOL' is not in bnb's basket"),
    (_with("pool: {liquidity: 1_000_000}\n", "pool: {liquidity: 1_000_000}\nlp: {bucket: {USDT: 100}}\n"), 7,
     "unknown key 'bucket'"),
    (GOOD + "lps: {run: {drawdown: 0.02, assets: [USDT, DAI]}}\n", 13, "lps.run.assets: 'DAI' is not in bnb's basket"),
    (GOOD + "lps: {run: {drawdown: 0.02, assets: [USDT, USDT]}}\n", 13, "lps.run.assets: give each asset once"),
    (GOOD + "lps: {run: {drawdown: 1.5}}\n", 13, "drawdown: Input should be less than 1"),
    (GOOD + "lps: {run: {drawdown: 0.02, share: 1}}\n", 13, "share: Input should be less than 1"),
    (GOOD + "lps: {deposits_per_day: 5}\n", 13, "deposits_per_day above 0 needs an amount distribution"),
    (GOOD + "sweep:\n  basket_targets: [{USDT: 100}, {USDT: 50}]\n", 14,
     "sweep.basket_targets = {'USDT': 50}: basket_targets: the shares must sum to 100 (%), got 50"),
    (_with("BTC/USD: {model: gbm, volatility: 0.6}\n", "BTC/USD: {model: replay, csv: nowhere.csv}\n"), 8,
     "prices.BTC/USD.csv"),
    (_with("[[1, 0.3], [0.3, 1]]", "[[1, 0.3]]"), 10, "correlation must be 2 x 2"),
    (_with("[[1, 0.3], [0.3, 1]]", "[[1, 0.3], [0.4, 1]]"), 10, "symmetric with 1 on the diagonal"),
    (_with("[[1, 0.3], [0.3, 1]]", "[[1, 1], [1, 1]]"), 10, "positive definite"),
    (_with("cohort:\n  - {pair: BTC/USD, side: long, leverage: 1001, amount: 100}\n", "cohort: []\n"), 1,
     "a study needs a cohort, traders, or both"),
    (_with("{pair: BTC/USD, side: long", "{pair: SOL/USD, side: long"), 12, "pair 'SOL/USD' has no price model"),
    (_with("leverage: 1001, amount: 100}", "leverage: 1001, amount: 100, tp: 0.1}"), 12, "unknown key 'tp'"),
    (_with("side: long", "side: up"), 12, "side: Input should be 'long' or 'short'"),
    (_with("leverage: 1001, amount: 100}", "leverage: 1001, amount: 0}"), 12, "amount: Input should be greater than 0"),
    (_with("{pair: BTC/USD, side: long, leverage: 1001", "{pair: ETH/USD, side: long, leverage: 2000"), 12,
     "leverage 2000 is above ETH/USD's maximum of 1001"),
    (_with("leverage: 1001, amount: 100}", "leverage: 1001, amount: 100, stop_loss: 1.5}"), 12,
     "stop_loss: Input should be less than 1"),
    (GOOD + "sweep:\n  prices.BTC/USD.vol: [0.1]\n", 14, "sweep.prices.BTC/USD.vol = Decimal('0.1'): prices.BTC/USD.gbm.vol: Extra inputs"),
    (GOOD + "sweep:\n  prices.BTC/USD.volatility: [0.3, -1]\n", 14, "Input should be greater than or equal to 0"),
    (GOOD + "sweep:\n  cohort.3.leverage: [10]\n", 14, "no such field"),
    (GOOD + "sweep:\n  cohort.0.leverage: []\n", 14, "give at least one value"),
    (GOOD + "sweep:\n  cohort.0.pair: [SOL/USDC]\n", 14, "unknown pair 'SOL/USDC'"),
    (GOOD + "sweep:\n  seed: [1, 2]\n", 14, "cannot sweep seed"),
    (GOOD + "sweep:\n  cohort.0.amount: [" + ", ".join(str(i) for i in range(1, 30)) + "]\n  prices.BTC/USD.drift: ["
     + ", ".join(f"0.{i}" for i in range(1, 20)) + "]\n", 14, "551 cells; at most 400"),
    (GOOD + "settings:\n  engine: {fooBps: 5}\n", 14, "settings.engine.fooBps"),
    (GOOD + "settings:\n  pairs: {DOGE/USD: {spreadBps: 5}}\n", 14, "unknown pair 'DOGE/USD'"),
])
def test_each_mistake_is_refused_with_its_line(text, line, fragment):
    with pytest.raises(StudyError) as info:
        parse_study(text, "study.yaml")
    problems = info.value.problems
    assert any(p.startswith(f"study.yaml:{line}:") and fragment in p for p in problems), problems


def test_basket_prices_targets_and_the_lp_split_parse():
    text = _with("ETH/USD: {model: jump", "BNB: {model: jump").replace("  BTC/USD: {model: gbm, volatility: 0.6}\n",
                                                                       "  BTC/USD: {model: gbm, volatility: 0.6}\n"
                                                                       "  USDC: {model: gbm, volatility: 0.02}\n")
    text = text.replace("[[1, 0.3], [0.3, 1]]", "[[1, 0.1, 0.3], [0.1, 1, 0.1], [0.3, 0.1, 1]]")
    text += "basket_targets: {USDT: 99.99, BNB: 0.01}\nlp: {basket: {USDT: 70, BTC: 30}}\nstart_prices: {BNB: 700}\n"
    study = parse_study(text)
    assert study.diffusive_pairs == ["BTC/USD", "USDC", "BNB"]  # the correlation's order: prices'
    assert study.priced_pairs == ["BTC/USD"]  # the crowd trades pairs only
    from alpsim.study.lps import asset_start_prices, lp_split, targets_bps

    assert targets_bps(study) == [9999, 0, 1, 0, 0]  # listing order USDT, USDC, BNB, ETH, BTC
    assert lp_split(study) == {"USDT": 70, "USDC": 0, "BNB": 0, "ETH": 0, "BTC": 30}
    # BNB from the study, USDC from the profile, BTC the pair's devnet start price
    assert asset_start_prices(study) == {"USDT": 1, "USDC": 1, "BNB": 700, "ETH": 3000, "BTC": 60_000}
    assert lp_split(parse_study(GOOD)) == {"USDT": 50, "USDC": 30, "BNB": 8, "ETH": 6, "BTC": 6}  # the targets


def test_a_replay_csv_is_read_relative_to_the_study_and_checked(tmp_path):
    (tmp_path / "btc.csv").write_text("timestamp,price\n" + "".join(f"{i},{60_000 + i}\n" for i in range(30)))
    text = _with("BTC/USD: {model: gbm, volatility: 0.6}\n", "BTC/USD: {model: replay, csv: btc.csv, block: 10}\n")
    text = text.replace("correlation: [[1, 0.3], [0.3, 1]]\n", "")
    assert parse_study(text, "s.yaml", tmp_path).prices["BTC/USD"].block == 10
    too_long = text.replace("block: 10", "block: 40")
    with pytest.raises(StudyError) as info:
        parse_study(too_long, "s.yaml", tmp_path)
    assert any("block 40 is longer than the 29 returns" in p for p in info.value.problems)
    (tmp_path / "btc.csv").write_text("timestamp,price\n1,60000\n2,-1\n3,60001\n")
    with pytest.raises(StudyError) as info:
        parse_study(text, "s.yaml", tmp_path)
    assert any(p.startswith("s.yaml:8:") and "btc.csv" in p for p in info.value.problems), info.value.problems


@pytest.mark.parametrize(("text", "expected"), [(90, 90), ("90s", 90), ("15m", 900), ("24h", 86_400), ("7d", 604_800),
                                                ("1.5h", 5400)])
def test_durations(text, expected):
    assert seconds(text) == expected


@pytest.mark.parametrize("text", ["0s", "-5", "1.5s", "3 weeks", True, "h"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        seconds(text)
