from . import api_sync_preview
