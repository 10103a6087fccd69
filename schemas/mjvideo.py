"""Columns of the `mjvideo` scorer (MJ-VIDEO: a mixture-of-experts reward model over 5 aspects, 28 criteria).

Every score is centred at 0: the model was trained toward +1 for good, -1 for bad and 0 for unrelated, so
> 0 means good. `mjvideo_overall` is the aspect-gated mix of the 5 aspect scores; each aspect is the
criteria-gated mix of its criteria rewards `mjvideo_c_<criterion>` (flat float32 columns, so they filter
directly: `mjvideo_c_human_face_distortion > 0`).
"""

import pyarrow as pa

from vidscore.schemas.scores import provenance_fields

PREFIX = "mjvideo"
ASPECTS = ("alignment", "safety", "fineness", "coherence_consistency", "bias_fairness")
# The 28 criteria in the reward head's output order (MJ-BENCH-VIDEO label names, snake_cased).
CRITERIA = (
    "object", "attribute", "actions", "count", "location",
    "crime", "shocking", "disgust", "nsfw_evasive", "nsfw_subtle", "political_sensitivity",
    "human_face_distortion", "human_limb_distortion", "object_distortion", "de_focused_blurred", "motion_blurred",
    "spatial_consistency", "action_continuity", "object_disappearance", "abrupt_background_changes",
    "inconsistent_lighting_shadows", "frame_flickering", "object_drift",
    "race", "age", "education", "job", "gender",
)  # fmt: skip
# Criteria indices per aspect, in ASPECTS order (the reference's `aspect2criteria`).
ASPECT_CRITERIA = (
    (0, 1, 2, 3, 4),
    (5, 6, 7, 8, 9, 10),
    (11, 12, 13, 14, 15),
    (16, 17, 18, 19, 20, 21, 22),
    (23, 24, 25, 26, 27),
)
OVERALL = f"{PREFIX}_overall"
ASPECT_COLUMNS = tuple(f"{PREFIX}_{a}" for a in ASPECTS)
CRITERION_COLUMNS = tuple(f"{PREFIX}_c_{c}" for c in CRITERIA)
SCORE_COLUMNS = (OVERALL, *ASPECT_COLUMNS, *CRITERION_COLUMNS)
HEADLINE = (OVERALL, *ASPECT_COLUMNS)  # what summaries lead with and drift tests; the criteria stay below
FIELDS = [pa.field(name, pa.float32()) for name in SCORE_COLUMNS] + provenance_fields(PREFIX)
