from . import api_sync_preview
from . import api_sync_automation_wizard
from . import api_sync_replay_wizard
