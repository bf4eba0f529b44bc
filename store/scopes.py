"""What an API token may do. Each scope includes the ones below it: infer ⊂ label ⊂ admin.

- `infer`: ask the trained models (classify, sample, analogies, the Open Inference Protocol, Label
  Studio's predictions);
- `label`: also the data (data sets, their images and labels, suggestions), training and Label
  Studio's webhook;
- `admin`: everything, deleting and exporting models included. `ADGM_API_KEY` is an admin key.
"""

from enum import StrEnum


class Scope(StrEnum):
    INFER = "infer"
    LABEL = "label"
    ADMIN = "admin"

    def covers(self, needed: "Scope") -> bool:
        order = list(Scope)
        return order.index(self) >= order.index(needed)
