import { registry } from "@web/core/registry";

// Opens the apps menu, as web_tour's stepUtils.showAppsMenuItem() does on both series; that
// module moved (18.0: @web_tour/tour_service/tour_utils / 19.0: @web_tour/tour_utils).
const showAppsMenuItem = {
    isActive: ["auto", "community", "desktop"],
    trigger: ".o_navbar_apps_menu button:enabled",
    tooltipPosition: "bottom",
    run: "click",
};

// Every step waits up to 30 s for its element (Odoo's default is 10 s, which a loaded machine,
// running other tests or servers beside, exceeds now and then); a step may set its own.
const STEP_TIMEOUT = 30000;

function patient(steps) {
    return steps.map((step) => ({ timeout: STEP_TIMEOUT, ...step }));
}

/**
 * The element of ``selector`` whose text is exactly ``label``, once it is shown (5 s at most):
 * menus and dropdowns render their items again as they load.
 */
async function itemOf(selector, label) {
    for (let wait = 0; wait < 100; wait++) {
        const item = [...document.querySelectorAll(selector)].find(
            (element) => element.textContent.trim() === label
        );
        if (item) {
            return item;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`no ${selector} "${label}"`);
}

/**
 * Choose ``value`` (shown as ``label``) in the selection field ``fieldName`` of the dialog: a
 * <select> (18.0) or a menu opened by its toggler, whose items are the labels (19.0).
 */
function pickSelection(fieldName, value, label) {
    const dialog = ".o_dialog:not(.o_inactive_modal)";
    return {
        content: label,
        trigger: `${dialog} div[name="${fieldName}"] :is(select, .o_select_menu_toggler)`,
        async run(helpers) {
            if (this.anchor.tagName === "SELECT") {
                await helpers.select(JSON.stringify(value));
            } else {
                await helpers.click();
                await helpers.click(await itemOf(".o_select_menu_item", label));
            }
        },
    };
}

/** Pick the autocomplete entry whose text is exactly ``label``. */
function pickAutocomplete(fieldName, label) {
    return [
        {
            content: `wait for "${label}" in the ${fieldName} dropdown`,
            trigger: `div[name="${fieldName}"] .o-autocomplete--dropdown-item:contains("${label}")`,
        },
        {
            content: `pick "${label}"`,
            trigger: `div[name="${fieldName}"] .o-autocomplete--dropdown-menu`,
            async run() {
                const item = await itemOf(
                    `div[name="${fieldName}"] .o-autocomplete--dropdown-item a`,
                    label
                );
                item.click();
            },
        },
        {
            content: "dropdown closed",
            trigger: `div[name="${fieldName}"] .o-autocomplete:not(:has(.o-autocomplete--dropdown-menu))`,
        },
    ];
}

registry.category("web_tour.tours").add("api_sync_dashboard", {
    url: "/odoo",
    steps: () => patient([
        showAppsMenuItem,
        {
            content: "open the API Sync app",
            trigger: '.o_app[data-menu-xmlid="api_sync.menu_api_sync_app"]',
            run: "click",
        },
        {
            content: "a card per configuration, with its health",
            trigger: '.o_kanban_record:contains("Tour Receiver"):contains("Healthy")',
        },
        {
            content: "its failing sibling says so",
            trigger: '.o_kanban_record:contains("Tour Down"):contains("Failing since")',
        },
        {
            content: "open the logs of the healthy one",
            trigger: '.o_kanban_record:contains("Tour Receiver") button[name="action_view_logs"]',
            run: "click",
        },
        {
            content: "its logs",
            trigger: '.o_list_view .o_data_row:contains("Tour Paula")',
        },
        {
            content: "the graph of events per day",
            trigger: ".o_switch_view.o_graph",
            run: "click",
        },
        // the steps after a server round trip that loads or generates much wait longer than
        // the default 10 s: on a loaded machine they took more (all series)
        { content: "graph shown", trigger: ".o_graph_renderer canvas" },
    ]),
});

registry.category("web_tour.tours").add("api_sync_configure", {
    url: "/odoo/action-api_sync.action_api_sync_config",
    steps: () => patient([
        { content: "new configuration", trigger: ".o_list_button_add", run: "click" },
        { trigger: 'div[name="name"] input', run: "edit Tour From Scratch" },
        { trigger: 'div[name="model_id"] input', run: "edit Contact" },
        ...pickAutocomplete("model_id", "Contact"),
        { trigger: 'div[name="endpoint_url"] input', run: "edit http://127.0.0.1:9/tour" },
        { content: "save", trigger: ".o_form_button_save", run: "click" },
        { content: "saved", trigger: ".o_form_saved" },
        {
            content: "preview the payload",
            trigger: 'button[name="action_preview_payload"]',
            run: "click",
        },
        {
            content: "the JSON of a contact",
            trigger: '.modal div[name="payload"]:contains("display_name")',
        },
        { content: "close the preview", trigger: ".modal .btn-close", run: "click" },
        {
            content: "test the connection",
            trigger: 'button[name="action_test_connection"]',
            run: "click",
        },
        {
            content: "nothing listens there: said plainly",
            trigger: '.o_notification:contains("Connection failed")',
        },
        {
            content: "create the automation rules",
            trigger: 'button[name="action_create_automation_rules"]',
            run: "click",
        },
        { trigger: '.modal button[name="action_generate"]', run: "click" },
        {
            content: "two rules",
            trigger: '.o_kanban_record:contains("on deletion")',
        },
        {
            content: "back to the configuration",
            trigger: '.breadcrumb-item a:contains("Tour From Scratch")',
            run: "click",
        },
        {
            content: "create them again",
            trigger: 'button[name="action_create_automation_rules"]',
            run: "click",
        },
        { trigger: '.modal button[name="action_generate"]', run: "click" },
        {
            content: "still two rules, updated",
            trigger: '.o_kanban_record:contains("on deletion")',
            run() {
                const cards = document.querySelectorAll(".o_kanban_record:not(.o_kanban_ghost)");
                if (cards.length !== 2) {
                    throw new Error(`expected 2 rules, got ${cards.length}`);
                }
            },
        },
    ]),
});

registry.category("web_tour.tours").add("api_sync_record_logs", {
    steps: () => patient([
        { content: "the contact's form", trigger: 'div[name="email"] input', run: "edit t@x.io" },
        { content: "save", trigger: ".o_form_button_save", run: "click" },
        { content: "saved", trigger: ".o_form_saved" },
        {
            content: "its sync status button",
            trigger: ".o_api_sync_status",
            run: "click",
        },
        {
            content: "its history: the update",
            trigger: '.o_list_view .o_data_row:contains("Update")',
        },
        { content: "back", trigger: ".breadcrumb-item a", run: "click" },
        { content: "on the contact again", trigger: '.o_form_view div[name="email"] input' },
        { content: "actions", trigger: ".o_cp_action_menus .dropdown-toggle", run: "click" },
        {
            content: "delete it",
            trigger: '.o-dropdown--menu .dropdown-item:contains("Delete")',
            run: "click",
        },
        { trigger: '.modal button.btn-primary:contains("Delete")', run: "click" },
        {
            // where the web client goes next depends on the Odoo version and the breadcrumbs (a
            // list, a new record's form, the home action): only that the contact is gone is sure
            content: "deleted: the contact is no longer shown",
            trigger: 'body:not(:has(.o_breadcrumb:contains("Tour Rita")))',
        },
    ]),
});

registry.category("web_tour.tours").add("api_sync_deleted_record_logs", {
    url: "/odoo/action-api_sync.action_api_sync_log",
    steps: () => patient([
        {
            content: "open the delete event of the deleted contact",
            trigger: '.o_data_row:contains("Tour Dora"):contains("Delete") td.o_data_cell',
            run: "click",
        },
        {
            content: "the log opens (no crash), naming the record",
            trigger: '.o_form_view div[name="record_name"]:contains("Tour Dora")',
        },
        { content: "no broken link", trigger: '.o_form_view:not(:has(div[name="record_ref"] a))' },
        { content: "back", trigger: ".breadcrumb-item a", run: "click" },
        {
            content: "open its earlier update",
            trigger: '.o_data_row:contains("Tour Dora"):contains("Update") td.o_data_cell',
            run: "click",
        },
        {
            content: "opens too",
            trigger: '.o_form_view div[name="record_name"]:contains("Tour Dora")',
        },
    ]),
});

registry.category("web_tour.tours").add("api_sync_failed_and_bulk_retry", {
    url: "/odoo/action-api_sync.action_api_sync_log",
    steps: () => patient([
        {
            content: "open a failed event",
            trigger: '.o_data_row:contains("Tour Fred"):contains("Failed") td.o_data_cell',
            run: "click",
        },
        {
            content: "a banner says why, plainly",
            trigger: '.alert-danger:contains("Connection refused by 127.0.0.1:9")',
        },
        { content: "back", trigger: ".breadcrumb-item a", run: "click" },
        {
            content: "select every event",
            trigger: "thead .o_list_record_selector input",
            run: "click",
        },
        {
            content: "retry the selection",
            trigger: '.o_control_panel button[name="action_retry"]',
            run: "click",
        },
        {
            content: "what could be retried was, and it says how many",
            trigger: ".o_notification:contains(\"queued again\")",
        },
    ]),
});

/** Pick ``fieldName`` in the source path selector of the active dialog. */
function pickSourceField(fieldName) {
    const dialog = ".o_dialog:not(.o_inactive_modal)";
    return [
        {
            content: `open the field selector of the source path`,
            trigger: `${dialog} div[name="source_path"] .o_model_field_selector`,
            run: "click",
        },
        {
            content: `pick ${fieldName}`,
            trigger: `.o_model_field_selector_popover li[data-name="${fieldName}"] .o_model_field_selector_popover_item_name`,
            run: "click",
        },
        {
            content: "picked",
            trigger: `${dialog} div[name="source_path"]:not(:has(.o_model_field_selector_warning))`,
        },
    ];
}

registry.category("web_tour.tours").add("api_sync_mapping_lines", {
    steps: () => patient([
        { content: "the mapping", trigger: '.nav-link[name="mapping"]', run: "click" },
        {
            content: "add a mapping line",
            trigger: 'div[name="mapping_ids"] .o_field_x2many_list_row_add a',
            run: "click",
        },
        ...pickSourceField("bank_ids"),
        pickSelection("transform", "lines", "Lines (list of objects)"),
        {
            trigger: '.o_dialog:not(.o_inactive_modal) div[name="target_key"] input',
            run: "edit accounts",
        },
        {
            content: "add a Line Field",
            trigger:
                '.o_dialog:not(.o_inactive_modal) div[name="child_line_ids"] .o_field_x2many_list_row_add a',
            run: "click",
        },
        {
            content: "a second dialog, for the Line Field",
            trigger: '.o_dialog:not(.o_inactive_modal) .modal-title:contains("Line Fields")',
        },
        // the selector offers the fields of a bank account, the listed model
        ...pickSourceField("acc_number"),
        {
            trigger: '.o_dialog:not(.o_inactive_modal) div[name="target_key"] input',
            run: "edit number",
        },
        {
            content: "save the Line Field",
            trigger: '.o_dialog:not(.o_inactive_modal):contains("Line Fields") .o_form_button_save',
            run: "click",
        },
        {
            content: "listed in its Lines line",
            trigger: '.o_dialog div[name="child_line_ids"] .o_data_row:contains("acc_number")',
        },
        {
            content: "save the Lines line",
            trigger: ".o_dialog:not(.o_inactive_modal) .o_form_button_save",
            run: "click",
        },
        {
            content: "listed with its Line Fields",
            trigger: 'div[name="mapping_ids"] .o_data_row:contains("accounts"):contains("number")',
        },
        { content: "save", trigger: ".o_form_button_save", run: "click" },
        { content: "saved", trigger: ".o_form_saved" },
    ]),
});
