"""Names api_sync's Python code shares, each defined once: its security groups' xml ids and the
queue_job channel its jobs run in (declared in ``data/queue_job_data.xml``)."""

MANAGER_GROUP = "api_sync.group_api_sync_manager"
USER_GROUP = "api_sync.group_api_sync_user"
ADMIN_GROUP = "base.group_system"  # Odoo's Settings administrators
CHANNEL = "root.api_sync"
