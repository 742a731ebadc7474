"""A logistic known/unknown probe on SAE codes (or any features), fitted with L-BFGS in torch."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LogisticProbe:
    """P(known | features) = sigmoid(((features - mean) / scale) · weight + bias)."""

    weight: torch.Tensor
    bias: torch.Tensor
    mean: torch.Tensor
    scale: torch.Tensor

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        standardised = (features - self.mean.to(features)) / self.scale.to(features)
        return standardised @ self.weight.to(features) + self.bias.to(features)

    def p_known(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(features))

    def accuracy(self, features: torch.Tensor, labels: torch.Tensor) -> float:
        predicted = self.p_known(features) >= 0.5
        return float((predicted == labels.bool()).float().mean())

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"probe.weight": self.weight, "probe.bias": self.bias, "probe.mean": self.mean, "probe.scale": self.scale}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> LogisticProbe:
        return cls(tensors["probe.weight"], tensors["probe.bias"], tensors["probe.mean"], tensors["probe.scale"])


def fit_probe(features: torch.Tensor, labels: torch.Tensor, *, l2: float = 1e-2, max_iter: int = 200) -> LogisticProbe:
    """Fit an L2-regularised logistic regression; ``labels`` are 1 for known, 0 for unknown."""
    features = features.detach().double().cpu()
    targets = labels.detach().double().cpu()
    mean = features.mean(0)
    scale = features.std(0).clamp_min(1e-3)
    standardised = (features - mean) / scale
    weight = torch.zeros(features.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        logits = standardised @ weight + bias
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets) + l2 * weight.pow(2).sum() / len(targets)
        loss.backward()
        return loss

    optimiser.step(closure)
    return LogisticProbe(weight.detach().float(), bias.detach().float(), mean.float(), scale.float())
