{
    "name": "API Sync",
    "summary": "Push record changes and scheduled batches to external HTTP APIs, "
    "reliably and visibly",
    # Odoo 18.0 and 19.0: each prefixes its own series (18.0.1.1.0, 19.0.1.1.0), as a version of
    # three parts is read; this release supports both (README.md, Compatibility).
    "version": "1.1.0",
    "license": "LGPL-3",
    "author": "api_sync contributors",
    "website": "https://github.com/api-sync/api_sync",
    "category": "Extra Tools",
    "application": True,
    "depends": ["base", "mail", "base_automation", "queue_job"],
    "external_dependencies": {"python": ["requests"]},
    "data": [
        "security/api_sync_security.xml",
        "security/ir.model.access.csv",
        "security/api_sync_endpoint_security.xml",
        "data/queue_job_data.xml",
        "data/ir_cron_data.xml",
        "data/api_sync_recovery_data.xml",
        "views/api_sync_log_views.xml",
        "views/api_sync_log_recovery_views.xml",
        "views/api_sync_record_status_views.xml",
        "views/api_sync_binding_views.xml",
        "views/api_sync_run_views.xml",
        "views/api_sync_field_mapping_views.xml",
        "views/api_sync_config_views.xml",
        "views/api_sync_endpoint_views.xml",
        "views/ir_actions_server_views.xml",
        "wizard/api_sync_preview_views.xml",
        "wizard/api_sync_automation_wizard_views.xml",
        "wizard/api_sync_replay_wizard_views.xml",
        "views/api_sync_menus.xml",
        "views/res_config_settings_views.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "api_sync/static/src/sync_status/*",
            "api_sync/static/src/refresh/*",
            "api_sync/static/src/fields/*",
        ],
        "web.assets_tests": [
            "api_sync/static/tests/tours/*.js",
        ],
    },
    "demo": [
        "demo/api_sync_demo.xml",
        "demo/api_sync_demo_inbound.xml",
    ],
    "uninstall_hook": "uninstall_hook",
}
