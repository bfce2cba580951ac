"""The trading engine's settings, mirroring `contracts/trading/EngineSettings.sol` (`Settings`,
set by `setSettings`): fees and discounts, ROI caps, the open-loss guard, liquidation
thresholds, the request window and the per-block execution cap, with the defaults of
docs/mechanics.md sections 4, 5, 6 and 11. The model keeps no keeper key, treasury address or
pause: none of them changes a number it computes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..units import WAD


@dataclass(frozen=True)
class Settings:
    """Mirrors `ITradingEngine.Settings` (docs/mechanics.md defaults)."""

    execution_fee_usd: int
    min_notional_usd: int = 100 * WAD
    extreme_leverage: int = 500
    max_roi_leverage: int = 1000
    open_fee_bps: int = 8
    close_fee_bps: int = 8
    extreme_min_close_fee_bps: int = 3
    extreme_profit_fee_bps: int = 1500
    referral_discount_bps: int = 500
    token_discount_bps: int = 500
    pool_fee_share_bps: int = 5000
    roi_cap_standard_bps: int = 90_000
    roi_cap_extreme_bps: int = 50_000
    roi_cap_max_leverage_bps: int = 30_000
    open_loss_guard_bps: int = 8000
    liquidation_threshold_standard_bps: int = 9000
    liquidation_threshold_extreme_bps: int = 8500
    request_expiry_blocks: int = 10
    max_executions_per_pair_per_block: int = 100
