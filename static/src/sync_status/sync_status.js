import { Component, onWillStart, onWillUpdateProps, useState } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { deserializeDateTime, formatDateTime } from "@web/core/l10n/dates";
import { useService } from "@web/core/utils/hooks";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";

/**
 * Smart button on the form of a synced record: its last sync state and time, opening the
 * record's sync history (batch deliveries included).
 */
export class ApiSyncStatus extends Component {
    static template = "api_sync.SyncStatus";
    static props = { ...standardWidgetProps };

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.state = useState({ summary: null });
        onWillStart(() => this.load(this.props.record));
        onWillUpdateProps((next) => this.load(next.record));
    }

    async load(record) {
        this.state.summary = record.resId
            ? await this.orm.call("api.sync.record.status", "get_status_summary", [
                  record.resModel,
                  record.resId,
              ])
            : null;
    }

    get when() {
        const at = this.state.summary && this.state.summary.at;
        return at ? formatDateTime(deserializeDateTime(at)) : "";
    }

    async open() {
        const { resModel, resId } = this.props.record;
        const action = await this.orm.call("api.sync.record.status", "action_open_history", [
            resModel,
            resId,
        ]);
        await this.action.doAction(action);
    }
}

registry.category("view_widgets").add("api_sync_status", { component: ApiSyncStatus });
