"""Seeded price paths (alpsim.study.prices) and closed-form barrier probabilities
(alpsim.study.closed_form), checked against theory and independent Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import zeta
from scipy.stats import norm

from alpsim.study.closed_form import BGK_BETA, hit_probability
from alpsim.study.prices import (SECONDS_PER_YEAR, Gbm, Jump, Replay, load_price_csv, path_rng,
                                 price_paths)

DAY_S = 24 * 3600


def history(points: int = 101, seed: int = 5) -> tuple[float, ...]:
    """A synthetic price history with distinct (continuous, random) log returns."""
    returns = np.random.default_rng(seed).normal(0.0, 0.02, points - 1)
    return tuple(float(p) for p in 50.0 * np.exp(np.concatenate(([0.0], np.cumsum(returns)))))


def log_returns(models: dict, start: dict, paths: int, steps: int, step_s: float, seed: int = 1,
                correlation: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per pair, a paths x steps array of log returns, one path per path_rng(seed, i)."""
    out = {pair: np.empty((paths, steps)) for pair in models}
    for i in range(paths):
        drawn = price_paths(models, start, steps, step_s, path_rng(seed, i), correlation)
        for pair, path in drawn.items():
            out[pair][i] = np.diff(np.log(path))
    return out


# --- determinism and shape -------------------------------------------------------------------

MIXED = {"BTC": Gbm(0.6, 0.1), "HIST": Replay(history(), block=5), "ETH": Jump(0.8, -0.2, 12.0, -0.03, 0.05)}
MIXED_START = {"BTC": 60_000.0, "HIST": 3.0, "ETH": 3_000.0}
MIXED_CORR = np.array([[1.0, 0.7], [0.7, 1.0]])


def test_same_seed_and_index_give_identical_paths_other_indices_differ():
    first = price_paths(MIXED, MIXED_START, 40, 60.0, path_rng(42, 3), MIXED_CORR)
    again = price_paths(MIXED, MIXED_START, 40, 60.0, path_rng(42, 3), MIXED_CORR)
    other_index = price_paths(MIXED, MIXED_START, 40, 60.0, path_rng(42, 4), MIXED_CORR)
    other_seed = price_paths(MIXED, MIXED_START, 40, 60.0, path_rng(43, 3), MIXED_CORR)
    assert list(first) == list(MIXED)
    for pair in MIXED:
        assert first[pair].tobytes() == again[pair].tobytes()
        assert not np.array_equal(first[pair], other_index[pair])
        assert not np.array_equal(first[pair], other_seed[pair])


def test_paths_do_not_depend_on_draw_order():
    forward = [price_paths(MIXED, MIXED_START, 10, 60.0, path_rng(9, i), MIXED_CORR) for i in range(5)]
    backward = [price_paths(MIXED, MIXED_START, 10, 60.0, path_rng(9, i), MIXED_CORR) for i in reversed(range(5))]
    for i in range(5):
        for pair in MIXED:
            assert forward[i][pair].tobytes() == backward[4 - i][pair].tobytes()


def test_path_shape_start_and_positivity():
    paths = price_paths(MIXED, MIXED_START, 17, 2.5, path_rng(1, 0))
    for pair, path in paths.items():
        assert path.shape == (18,)
        assert path.dtype == np.float64
        assert path[0] == MIXED_START[pair]
        assert np.all(path > 0) and np.all(np.isfinite(path))


# --- GBM statistics ----------------------------------------------------------------------------


def test_gbm_log_return_mean_and_variance_match_theory():
    # Daily steps: the -sigma^2/2 of the log drift is then ~10 standard errors of the mean.
    sigma, mu, steps, step_s = 0.9, 0.5, 50, float(DAY_S)
    r = log_returns({"X": Gbm(sigma, mu)}, {"X": 100.0}, 4_000, steps, step_s)["X"].ravel()
    dt = step_s / SECONDS_PER_YEAR
    mean, var = (mu - sigma**2 / 2) * dt, sigma**2 * dt
    # Returns are iid normal: SE of the mean sqrt(var/n), of the sample variance var sqrt(2/(n-1)).
    assert abs(r.mean() - mean) < 4 * math.sqrt(var / r.size)
    assert abs(r.var(ddof=1) - var) < 4 * var * math.sqrt(2 / (r.size - 1))


@pytest.mark.parametrize("rho", [0.8, -0.5])
def test_correlated_pairs_have_the_requested_correlation(rho):
    # A Replay pair between the two diffusive ones: the matrix is over Gbm/Jump pairs only.
    models = {"A": Gbm(0.5), "R": Replay(history(), block=4), "B": Gbm(1.2, 0.3)}
    start = {"A": 10.0, "R": 1.0, "B": 20.0}
    r = log_returns(models, start, 4_000, 50, 60.0, correlation=np.array([[1.0, rho], [rho, 1.0]]))
    n = r["A"].size
    sample = np.corrcoef(r["A"].ravel(), r["B"].ravel())[0, 1]
    assert abs(sample - rho) < 4 * (1 - rho**2) / math.sqrt(n)


def test_without_correlation_pairs_are_independent():
    r = log_returns({"A": Gbm(0.5), "B": Jump(0.7)}, {"A": 1.0, "B": 1.0}, 2_000, 50, 60.0)
    sample = np.corrcoef(r["A"].ravel(), r["B"].ravel())[0, 1]
    assert abs(sample) < 4 / math.sqrt(r["A"].size)


# --- jumps ---------------------------------------------------------------------------------------


def test_jump_without_intensity_equals_gbm():
    for i in range(5):
        gbm = price_paths({"X": Gbm(0.7, 0.2)}, {"X": 5.0}, 30, 60.0, path_rng(3, i))["X"]
        jump = price_paths({"X": Jump(0.7, 0.2, 0.0, -0.1, 0.3)}, {"X": 5.0}, 30, 60.0, path_rng(3, i))["X"]
        assert gbm.tobytes() == jump.tobytes()


def test_jump_diffusion_mean_price_is_compensated_and_log_returns_match_theory():
    sigma, mu, lam, m, s = 0.5, 0.3, 20.0, -0.05, 0.1
    steps, horizon_y = 20, 0.25
    step_s = horizon_y * SECONDS_PER_YEAR / steps
    r = log_returns({"X": Jump(sigma, mu, lam, m, s)}, {"X": 1.0}, 4_000, steps, step_s)["X"]
    growth = np.exp(r.sum(axis=1))  # S_T / S_0
    assert abs(growth.mean() - math.exp(mu * horizon_y)) < 4 * growth.std(ddof=1) / math.sqrt(growth.size)
    # Uncompensated, the jumps would move E[S_T] by exp(lam k T) ~ 0.80: far outside the band.
    dt = step_s / SECONDS_PER_YEAR
    k = math.exp(m + s**2 / 2) - 1
    flat = r.ravel()
    mean = (mu - lam * k - sigma**2 / 2) * dt + lam * dt * m
    var = sigma**2 * dt + lam * dt * (m**2 + s**2)  # diffusion plus compound Poisson: lam dt E[Y^2]
    assert abs(flat.mean() - mean) < 4 * flat.std(ddof=1) / math.sqrt(flat.size)
    squares = (flat - flat.mean()) ** 2
    assert abs(squares.mean() - var) < 4 * squares.std(ddof=1) / math.sqrt(flat.size)
    # The jumps fatten the tails: excess kurtosis well above a normal's 0.
    assert (squares**2).mean() / squares.mean() ** 2 - 3 > 1.0


# --- replay --------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [70, 65])
def test_replay_samples_whole_historical_blocks(steps):
    prices = history()
    past = np.diff(np.log(prices))
    block = 7
    positions = len(past) - block + 1
    counts = np.zeros(positions, dtype=int)
    for i in range(300):
        path = price_paths({"H": Replay(prices, block)}, {"H": 123.0}, steps, 60.0, path_rng(11, i))["H"]
        assert path.shape == (steps + 1,) and path[0] == 123.0
        sampled = np.diff(np.log(path))
        for first in range(0, steps, block):
            chunk = sampled[first:first + block]
            j = int(np.argmin(np.abs(past - chunk[0])))
            assert abs(past[j] - chunk[0]) < 1e-12  # every return occurs in the history
            assert j < positions  # a block never runs past the history's end
            np.testing.assert_allclose(chunk, past[j:j + len(chunk)], rtol=0, atol=1e-12)
            if len(chunk) == block:
                counts[j] += 1
    # Starting points uniform over all overlapping positions, the last one included.
    assert np.all(counts > 0)
    expected = counts.sum() / positions
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < (positions - 1) + 5 * math.sqrt(2 * (positions - 1))


def test_replay_with_the_longest_block_replays_the_history_scaled_to_start():
    prices = history(30)
    path = price_paths({"H": Replay(prices, block=len(prices) - 1)}, {"H": 7.0}, 29, 1.0, path_rng(0, 0))["H"]
    np.testing.assert_allclose(path, 7.0 * np.array(prices) / prices[0], rtol=1e-12)


def test_replay_accepts_a_list_and_stores_a_tuple():
    assert Replay([1.0, 2.0, 3.0], block=1).prices == (1.0, 2.0, 3.0)


# --- bad inputs ------------------------------------------------------------------------------------

GOOD = (1.0, 1.1, 1.2, 1.3)


@pytest.mark.parametrize("models, start, steps, step_s, field", [
    ({"BAD": Gbm(-0.1)}, {"BAD": 1.0}, 5, 1.0, "volatility"),
    ({"BAD": Jump(-0.1)}, {"BAD": 1.0}, 5, 1.0, "volatility"),
    ({"BAD": Jump(0.5, intensity=-1.0)}, {"BAD": 1.0}, 5, 1.0, "intensity"),
    ({"BAD": Jump(0.5, intensity=1.0, jump_std=-0.2)}, {"BAD": 1.0}, 5, 1.0, "jump_std"),
    ({"BAD": Gbm(float("nan"))}, {"BAD": 1.0}, 5, 1.0, "volatility"),
    ({"BAD": Gbm(0.5)}, {"BAD": 0.0}, 5, 1.0, "start"),
    ({"BAD": Gbm(0.5)}, {"BAD": -3.0}, 5, 1.0, "start"),
    ({"BAD": Gbm(0.5)}, {"OTHER": 1.0}, 5, 1.0, "start"),
    ({"BAD": Replay((1.0, 2.0), block=1)}, {"BAD": 1.0}, 5, 1.0, "prices"),
    ({"BAD": Replay((1.0, 0.0, 2.0), block=1)}, {"BAD": 1.0}, 5, 1.0, "prices"),
    ({"BAD": Replay((1.0, -1.0, 2.0), block=1)}, {"BAD": 1.0}, 5, 1.0, "prices"),
    ({"BAD": Replay(GOOD, block=0)}, {"BAD": 1.0}, 5, 1.0, "block"),
    ({"BAD": Replay(GOOD, block=len(GOOD))}, {"BAD": 1.0}, 5, 1.0, "block"),
])
def test_bad_models_raise_naming_the_pair_and_field(models, start, steps, step_s, field):
    with pytest.raises(ValueError) as error:
        price_paths({"OK": Gbm(0.1), **models}, {"OK": 1.0, **start}, steps, step_s, path_rng(0, 0))
    assert "BAD" in str(error.value) and field in str(error.value)


@pytest.mark.parametrize("steps, step_s, field", [(0, 1.0, "steps"), (-2, 1.0, "steps"), (2.5, 1.0, "steps"),
                                                  (5, 0.0, "step_s"), (5, -1.0, "step_s"),
                                                  (5, float("inf"), "step_s")])
def test_bad_steps_raise_naming_the_field(steps, step_s, field):
    with pytest.raises(ValueError, match=field):
        price_paths({"X": Gbm(0.1)}, {"X": 1.0}, steps, step_s, path_rng(0, 0))


@pytest.mark.parametrize("correlation, words", [
    (np.eye(3), "3 x 3|2 x 2|shape"),
    (np.array([[1.0, 0.5], [0.4, 1.0]]), "symmetric"),
    (np.array([[2.0, 0.5], [0.5, 1.0]]), "diagonal"),
    (np.array([[1.0, 1.0], [1.0, 1.0]]), "positive definite"),
    (np.array([[1.0, 1.5], [1.5, 1.0]]), "positive definite"),
])
def test_bad_correlation_raises(correlation, words):
    models = {"A": Gbm(0.5), "H": Replay(GOOD, 1), "B": Jump(0.5)}
    with pytest.raises(ValueError, match="correlation") as error:
        price_paths(models, {"A": 1.0, "H": 1.0, "B": 1.0}, 5, 1.0, path_rng(0, 0), correlation)
    assert any(word in str(error.value) for word in words.split("|"))


def test_path_rng_rejects_negative_seeds():
    with pytest.raises(ValueError, match="study_seed"):
        path_rng(-1, 0)
    with pytest.raises(ValueError, match="path_index"):
        path_rng(0, -1)


# --- CSV -------------------------------------------------------------------------------------------


def test_load_price_csv_reads_the_price_column(tmp_path):
    file = tmp_path / "btc.csv"
    file.write_text("timestamp,price\n1700000000,60000.5\n1700000060,60010\n\n1700000120,5.9e4\n")
    assert load_price_csv(file) == (60000.5, 60010.0, 59000.0)
    only = tmp_path / "only.csv"
    only.write_text("price\n1\n2\n3\n4\n")
    assert load_price_csv(str(only)) == (1.0, 2.0, 3.0, 4.0)


@pytest.mark.parametrize("text, words", [
    ("timestamp,close\n1,2\n2,3\n3,4\n", ["price"]),
    ("timestamp,price\n1,10\n2,abc\n3,12\n", ["line 3", "abc"]),
    ("timestamp,price\n1,10\n2,11\n3,0\n", ["line 4"]),
    ("timestamp,price\n1,-5\n2,11\n3,12\n", ["line 2"]),
    ("timestamp,price\n1,10\n2\n3,12\n", ["line 3"]),
    ("timestamp,price\n1,10\n2,11\n", ["3"]),
    ("", ["empty"]),
])
def test_load_price_csv_rejects_bad_files(tmp_path, text, words):
    file = tmp_path / "bad_prices.csv"
    file.write_text(text)
    with pytest.raises(ValueError) as error:
        load_price_csv(file)
    assert "bad_prices.csv" in str(error.value)
    for word in words:
        assert word in str(error.value)


def test_loaded_history_replays(tmp_path):
    file = tmp_path / "h.csv"
    file.write_text("price\n" + "\n".join(str(p) for p in history(40)) + "\n")
    path = price_paths({"H": Replay(load_price_csv(file), 10)}, {"H": 1.0}, 25, 60.0, path_rng(0, 1))["H"]
    assert path.shape == (26,)


# --- closed form -------------------------------------------------------------------------------------


def discrete_hit_mc(start: float, barrier: float, sigma: float, drift: float, horizon_s: float, steps: int,
                    paths: int, seed: int) -> tuple[float, float]:
    """Fraction of GBM paths at or beyond the barrier at one of the `steps` looks, and its standard error."""
    dt = horizon_s / steps / SECONDS_PER_YEAR
    rng = np.random.default_rng(seed)
    b = math.log(barrier / start)
    log_price = np.zeros(paths)
    hit = np.zeros(paths, dtype=bool)
    for _ in range(steps):
        log_price += (drift - sigma**2 / 2) * dt + sigma * math.sqrt(dt) * rng.standard_normal(paths)
        hit |= log_price <= b if b < 0 else log_price >= b
    p = float(hit.mean())
    return p, math.sqrt(p * (1 - p) / paths)


# (barrier, drift): lower and upper barriers, with no drift, drift away and drift towards the barrier.
BARRIER_CASES = [(87.0, 0.0), (87.0, -1.5), (115.0, 0.0), (115.0, 1.5), (115.0, -1.0)]


@pytest.mark.parametrize("barrier, drift", BARRIER_CASES)
def test_bgk_corrected_probability_matches_discrete_monte_carlo(barrier, drift):
    start, sigma, horizon_s, steps = 100.0, 0.6, 30 * DAY_S, 200
    step_s = horizon_s / steps
    mc, se = discrete_hit_mc(start, barrier, sigma, drift, horizon_s, steps, 20_000, seed=int(barrier * 10 + drift))
    corrected = hit_probability(start, barrier, sigma, horizon_s, drift, step_s=step_s)
    continuous = hit_probability(start, barrier, sigma, horizon_s, drift)
    assert 0.05 < mc < 0.95  # the case tests something
    assert abs(corrected - mc) < 3 * se
    # Discrete looks miss crossings between them: the continuous formula overstates, by more than noise.
    assert continuous - mc > 3 * se
    assert continuous > corrected


def test_continuous_formula_matches_the_reflection_principle_without_log_drift():
    # drift = sigma^2/2 makes the log price a driftless Brownian motion: P = 2 Phi(b / (sigma sqrt T)).
    sigma, horizon_s = 0.8, 10 * DAY_S
    spread = sigma * math.sqrt(horizon_s / SECONDS_PER_YEAR)
    for barrier in (70.0, 90.0, 99.0):
        expected = 2 * norm.cdf(math.log(barrier / 100.0) / spread)
        lower = hit_probability(100.0, barrier, sigma, horizon_s, drift=sigma**2 / 2)
        assert lower == pytest.approx(expected, rel=1e-12)
        # ... and the mirror-image upper barrier is equally likely.
        assert hit_probability(100.0, 100.0**2 / barrier, sigma, horizon_s, drift=sigma**2 / 2) == \
            pytest.approx(expected, rel=1e-12)


def test_probability_grows_with_horizon_and_monitoring_frequency():
    horizons = [hit_probability(100.0, 90.0, 0.7, days * DAY_S, drift=0.2) for days in (1, 5, 20, 100, 1000)]
    assert all(0 <= p <= 1 for p in horizons) and horizons == sorted(horizons)
    looks = [hit_probability(100.0, 90.0, 0.7, 20 * DAY_S, 0.2, step_s=s) for s in (86400.0, 3600.0, 60.0, 1.0)]
    continuous = hit_probability(100.0, 90.0, 0.7, 20 * DAY_S, 0.2)
    assert looks == sorted(looks) and looks[-1] < continuous
    assert looks[-1] == pytest.approx(continuous, abs=1e-3)


def test_bgk_beta_is_minus_zeta_half_over_sqrt_two_pi():
    assert BGK_BETA == pytest.approx(-zeta(0.5) / math.sqrt(2 * math.pi), rel=1e-12)


def test_limiting_cases():
    assert hit_probability(100.0, 100.0, 0.5, DAY_S) == 1.0
    assert hit_probability(100.0, 100.0, 0.0, 0.0, step_s=60.0) == 1.0
    assert hit_probability(100.0, 90.0, 0.5, 0.0) == 0.0
    assert hit_probability(100.0, 90.0, 0.5, 60.0, step_s=120.0) == 0.0  # no look within the horizon
    # Volatility 0: the path is S0 exp(drift t); a 10% fall at drift -1/year takes ln(1/0.9) years.
    reach_s = math.log(1 / 0.9) * SECONDS_PER_YEAR
    assert hit_probability(100.0, 90.0, 0.0, reach_s * 0.99, drift=-1.0) == 0.0
    assert hit_probability(100.0, 90.0, 0.0, reach_s * 1.01, drift=-1.0) == 1.0
    assert hit_probability(100.0, 90.0, 0.0, reach_s * 1.01, drift=1.0) == 0.0
    assert hit_probability(100.0, 90.0, 0.0, 1e12, drift=0.0) == 0.0
    up_s = math.log(1.2) / 0.5 * SECONDS_PER_YEAR
    assert hit_probability(100.0, 120.0, 0.0, up_s * 1.01, drift=0.5) == 1.0
    assert hit_probability(100.0, 120.0, 0.0, up_s * 0.99, drift=0.5) == 0.0
    # Far barriers and long horizons stay within [0, 1] without overflow.
    assert hit_probability(100.0, 1e-6, 0.01, 1e9, drift=-5.0) == pytest.approx(1.0)
    assert hit_probability(100.0, 1e-6, 0.01, 1e9, drift=5.0) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("kwargs, field", [
    ({"start": 0.0}, "start"), ({"barrier": -1.0}, "barrier"), ({"volatility": -0.1}, "volatility"),
    ({"horizon_s": -1.0}, "horizon_s"), ({"step_s": 0.0}, "step_s"), ({"drift": float("nan")}, "drift"),
])
def test_hit_probability_rejects_bad_inputs(kwargs, field):
    args = {"start": 100.0, "barrier": 90.0, "volatility": 0.5, "horizon_s": DAY_S, **kwargs}
    with pytest.raises(ValueError, match=field):
        hit_probability(**args)
