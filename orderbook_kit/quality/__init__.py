"""The quality gate: validate raw ticks, forward clean ones, dead-letter the rest with a reason."""
