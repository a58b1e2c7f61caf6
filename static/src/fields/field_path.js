import { registry } from "@web/core/registry";

// The field path picker of mapping lines (widget="api_sync_field_path", option "model": the field
// holding the model name): web's field selector widget, which each series registers under its own
// name (18.0: DynamicModelFieldSelectorChar / 19.0: field_selector).
const fields = registry.category("fields");
fields.add(
    "api_sync_field_path",
    fields.get("field_selector", null) || fields.get("DynamicModelFieldSelectorChar")
);
