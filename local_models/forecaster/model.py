"""One global quantile forecaster shared by every product, category and the shop.

The network sees one window at a time, normalised by that series' own scale, so a mug selling 3 a week and the
whole shop selling 100,000 a week are the same problem to it. Two encoders are available and were compared on the
validation window (see benchmarks/results/forecaster.md): a residual MLP over the flattened window (N-BEATS/TiDE
style, the default) and a GRU over the history (the encoder half of DeepAR/MQ-RNN). Both decode all H periods at
once into Q quantiles, trained with the pinball loss.

Price (`Config.use_price`). Prices enter only through a demand curve: every quantile is multiplied by
exp(-e · Δlog price), Δlog price being the target period's price relative to the current one, and the elasticity
e ≥ 0 is predicted per window from the trunk's features and the price history. A planned price cut can therefore
never lower a forecast and a rise never raise it (the law of demand is built in, not hoped for), and the price held
at its current level changes nothing (Δ = 0). The trunk is trained first exactly as without prices; the elasticity
head is then fitted on the frozen trunk (train.fit_elasticity), so switching prices on cannot change a forecast made
at the current price, only add the answer to "what if the price changed?".
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from local_models.forecaster.config import Config

ELASTICITY_GAIN = 10.0
ELASTICITY_INIT = -3.0  # softplus(-3) ≈ 0.05


def pinball_loss(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """Mean quantile (pinball) loss over the observed targets.

    Args:
        pred: (B, H, Q) predicted quantiles.
        y: (B, H) targets.
        mask: (B, H) 1 where the target counts.
        quantiles: (Q,) quantile levels.

    Returns:
        Scalar loss.
    """
    diff = y.unsqueeze(-1) - pred  # (B, H, Q)
    loss = torch.maximum(quantiles * diff, (quantiles - 1) * diff)  # (B, H, Q)
    return (loss.mean(-1) * mask).sum() / mask.sum().clamp_min(1.0)


class _Block(nn.Module):
    """Pre-norm residual MLP block."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.norm(x)))))


class QuantileForecaster(nn.Module):
    """Global multi-horizon quantile model; see the module docstring."""

    def __init__(self, config: Config, n_static: int, n_calendar: int, n_series: int) -> None:
        super().__init__()
        self.config = config
        c = config
        H, L, Q = c.horizon, c.lookback, len(c.quantiles)
        self.register_buffer("q", torch.tensor(c.quantiles, dtype=torch.float32), persistent=False)
        self.median_idx = list(c.quantiles).index(0.5)
        self.emb = nn.Embedding(n_series + 1, c.id_embedding_dim) if c.id_embedding_dim > 0 else None
        n_cal = n_calendar if c.use_calendar else 0
        extra = n_static + H * n_cal + c.id_embedding_dim
        n_seq = 2 + c.use_shop_context  # history rows: values, mask, shop total
        if c.arch == "mlp":
            self.inp = nn.Linear(L * n_seq + extra, c.hidden)
        elif c.arch == "rnn":
            self.rnn = nn.GRU(n_seq, c.hidden, batch_first=True)
            self.inp = nn.Linear(c.hidden + extra, c.hidden)
        else:
            raise ValueError(f"arch must be 'mlp' or 'rnn', got {c.arch!r}")
        self.blocks = nn.ModuleList(_Block(c.hidden, c.dropout) for _ in range(c.n_blocks))
        self.norm = nn.LayerNorm(c.hidden)
        self.head = nn.Linear(c.hidden, H * Q)
        # A linear skip from the history straight to the median: the "last level" answer is then one weight away,
        # which makes early training stable on short data.
        self.skip = nn.Linear(L, H)
        if c.use_price:
            # e = softplus(ELASTICITY_GAIN * (w·[h, price] + b)): starts at 0.05 (almost no effect) and, through the
            # gain, can move within the few hundred steps of train.fit_elasticity; plain Adam steps would barely move it.
            self.elasticity_head = nn.Linear(c.hidden + L, 1)
            nn.init.zeros_(self.elasticity_head.weight)
            nn.init.constant_(self.elasticity_head.bias, ELASTICITY_INIT / ELASTICITY_GAIN)

    def trunk_parameters(self) -> list[nn.Parameter]:
        """Every parameter except the elasticity head's: what the first training stage optimises."""
        return [p for n, p in self.named_parameters() if not n.startswith("elasticity_head.")]

    def forward(
        self,
        hist: torch.Tensor,
        hist_mask: torch.Tensor,
        shop: torch.Tensor,
        static: torch.Tensor,
        cal: torch.Tensor,
        price: torch.Tensor,
        fprice: torch.Tensor,
        series: torch.Tensor,
        y: torch.Tensor | None = None,
        y_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Predicts quantiles and, given targets, the pinball loss.

        Args:
            hist: (B, L) normalised history.
            hist_mask: (B, L) 1 where observed.
            shop: (B, L) normalised shop history.
            static: (B, n_static).
            cal: (B, H, F) calendar features of the target periods.
            price: (B, L) history log price relative to the current price (ignored unless use_price).
            fprice: (B, H) target periods' log price relative to the current price (ignored unless use_price).
            series: (B,) embedding row (0 = unknown series).
            y: (B, H) normalised targets, optional.
            y_mask: (B, H) target mask, optional.

        Returns:
            (quantiles (B, H, Q) monotone in Q, loss or None).
        """
        out, h = self.encode(hist, hist_mask, shop, static, cal, series)
        # With every target at the current price the multiplier is exactly 1: skip it (the trunk's training stage).
        if self.config.use_price and bool(fprice.any()):
            out = out * price_factor(self.elasticity(h, price), fprice).unsqueeze(-1)  # (B, H, Q)
        loss = None if y is None else pinball_loss(out, y, y_mask, self.q)
        return out, loss

    def base_quantiles(
        self,
        hist: torch.Tensor,
        hist_mask: torch.Tensor,
        shop: torch.Tensor,
        static: torch.Tensor,
        cal: torch.Tensor,
        price: torch.Tensor,
        series: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantiles at the current price and the price elasticity; arguments as in `forward`.

        Returns:
            (quantiles (B, H, Q) monotone in Q, elasticity (B,) ≥ 0; zeros when the model ignores prices).
        """
        out, h = self.encode(hist, hist_mask, shop, static, cal, series)
        return out, self.elasticity(h, price)

    def encode(
        self,
        hist: torch.Tensor,
        hist_mask: torch.Tensor,
        shop: torch.Tensor,
        static: torch.Tensor,
        cal: torch.Tensor,
        series: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The price-free part: (quantiles at the current price (B, H, Q), trunk features (B, hidden))."""
        c = self.config
        B = hist.shape[0]
        seq = [hist, hist_mask] + ([shop] if c.use_shop_context else [])
        parts = [static]
        if c.use_calendar:
            parts.append(cal.reshape(B, -1))  # (B, H*F)
        if self.emb is not None:
            parts.append(self.emb(series))  # (B, E)
        if c.arch == "mlp":
            x = self.inp(torch.cat(seq + parts, dim=1))  # (B, hidden)
        else:
            _, h = self.rnn(torch.stack(seq, dim=-1))  # h: (1, B, hidden)
            x = self.inp(torch.cat([h[0]] + parts, dim=1))  # (B, hidden)
        for block in self.blocks:
            x = block(x)
        h = F.gelu(self.norm(x))  # (B, hidden)
        raw = self.head(h).view(B, c.horizon, len(c.quantiles))  # (B, H, Q)
        med = raw[..., self.median_idx] + self.skip(hist)  # (B, H)
        # Quantiles built outward from the median with positive gaps, so they can never cross.
        gaps = F.softplus(raw)
        below = [med]
        for i in range(self.median_idx - 1, -1, -1):
            below.append(below[-1] - gaps[..., i])
        above = [med]
        for i in range(self.median_idx + 1, len(c.quantiles)):
            above.append(above[-1] + gaps[..., i])
        out = torch.stack(below[::-1] + above[1:], dim=-1)  # (B, H, Q)
        return out, h

    def elasticity(self, h: torch.Tensor, price: torch.Tensor) -> torch.Tensor:
        """(B,) elasticity ≥ 0 from trunk features (B, hidden) and the price history (B, L); zeros without prices."""
        if not self.config.use_price:
            return torch.zeros(h.shape[0], device=h.device)
        e_in = torch.cat([h, price], dim=1)  # (B, hidden + L)
        return F.softplus(ELASTICITY_GAIN * self.elasticity_head(e_in).squeeze(-1))


def price_factor(elasticity: torch.Tensor, fprice: torch.Tensor) -> torch.Tensor:
    """(B, H) demand multiplier exp(-e · Δlog price) for elasticity (B,) and relative log prices (B, H)."""
    return torch.exp(-elasticity.unsqueeze(-1) * fprice)
