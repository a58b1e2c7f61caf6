import { registry } from "@web/core/registry";

const WATCHED = new Set(["api.sync.log", "api.sync.run", "api.sync.record.status", "api.sync.config"]);

const QUIET_MS = 2000; // a click or a key this recently: what it opens may not be shown yet
let lastInput = 0;
for (const type of ["pointerdown", "keydown"]) {
    document.addEventListener(type, () => (lastInput = Date.now()), true);
}

/**
 * Whether someone is editing: an open dialog, a form with unsaved changes (its save buttons
 * shown), or a click or key just now (a dialog it opens loads its view first). Reloading then
 * would save the form half-edited, or close the dialog (even one still loading).
 */
function editing() {
    return Boolean(
        Date.now() - lastInput < QUIET_MS ||
            document.querySelector(".o_dialog") ||
            document.querySelector(".o_form_status_indicator_buttons:not(.invisible)")
    );
}

/**
 * Sync logs and runs change while people look at them (deliveries, retries, run progress): the
 * server tells API Sync users which records changed (one notification per transaction), and the
 * view showing them, if it is the current one, reloads (at most once a second; while someone is
 * editing, once they are done).
 */
export const apiSyncRefreshService = {
    dependencies: ["action", "bus_service"],
    start(env, { action, bus_service }) {
        let timer = null;
        const reloadSoon = () => {
            if (!timer) {
                const reload = () => {
                    if (editing()) {
                        timer = setTimeout(reload, 1000);
                        return;
                    }
                    timer = null;
                    action.doAction("soft_reload");
                };
                timer = setTimeout(reload, 1000);
            }
        };
        bus_service.subscribe("api_sync/updated", ({ model, ids }) => {
            const controller = action.currentController;
            const props = controller && controller.props;
            if (!props || !WATCHED.has(props.resModel)) {
                return;
            }
            const shown = props.resModel === model || model === "api.sync.log";
            const resId = props.resId;
            if (shown && (!resId || props.resModel !== model || ids.includes(resId))) {
                reloadSoon();
            }
        });
        bus_service.start();
    },
};

registry.category("services").add("api_sync_refresh", apiSyncRefreshService);
