from . import api_sync_config
from . import api_sync_field_mapping
from . import api_sync_log
from . import api_sync_log_recovery
from . import api_sync_record_status
from . import api_sync_run
from . import ir_actions_server
