"""Activity names: the only thing workflows need to know about activities besides schemas."""

RESOLVE_RUN_CONFIG = "resolve_run_config"
PREPARE_DATASETS = "prepare_datasets"
RECORD_RUN = "record_run"
ASSESS_RUN = "assess_run"
PUBLISH_RUN = "publish_run"
DEPLOY_CANDIDATE = "deploy_candidate"
EVALUATE_CANDIDATE = "evaluate_candidate"
CUSTOMIZE_CANDIDATE = "customize_candidate"
TEARDOWN_CANDIDATE = "teardown_candidate"
RELEASE_RUN_RESOURCES = "release_run_resources"

NON_RETRYABLE_ERROR_TYPES = [
    "ConfigError",
    "InvalidDataError",
    "UnsupportedOperation",
    "NotFoundError",
]
"""ApplicationError types that retrying cannot fix (bad config, bad data, unsupported request)."""
