"""Columns of the `videoreward` scorer: VideoReward's three rewards (VideoAlign), calibrated and raw.

`videoreward_vq`, `_mq`, `_ta` are the calibrated rewards the reference reports: (raw - mean) / std with the
checkpoint's fixed statistics (`inference_config` in its model_config.json), so 0 is the training set's average
and each unit one standard deviation; higher is better. `videoreward_overall` = vq + mq + ta, calibrated.
The `_raw` columns hold the reward head's outputs before calibration (what a checkpoint without statistics gives);
`videoreward_overall_raw` is their sum.
"""

import pyarrow as pa

from vidscore.schemas.scores import provenance_fields

PREFIX = "videoreward"
ASPECTS = ("vq", "mq", "ta")  # visual quality, motion quality, text alignment: the reward tokens' order
SCORES = (*ASPECTS, "overall")
HEADLINE = tuple(f"{PREFIX}_{a}" for a in ("overall", *ASPECTS))  # summaries lead with these, drift tests them
FIELDS = (
    [pa.field(f"{PREFIX}_{a}", pa.float32()) for a in SCORES]
    + [pa.field(f"{PREFIX}_{a}_raw", pa.float32()) for a in SCORES]
    + provenance_fields(PREFIX)
)
