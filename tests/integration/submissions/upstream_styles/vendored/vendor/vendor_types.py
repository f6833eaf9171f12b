"""Config classes; imported as `vendor_types` by `core` and as `vendor.vendor_types` by the submission."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class SgdConfig:
    learning_rate: float
    momentum: float
