"""Documents with lines: a change of a mapped field of a line (a record that a Lines mapping
line lists, at any depth) sends an update of the document it belongs to, naming the document's
field that leads to the lines (see the listener and the generated rules)."""

from odoo import models

from ..engine import mapping


class ApiSyncConfig(models.Model):
    _inherit = "api.sync.config"

    def _line_levels(self):
        """``((path, line model, watched field names, link field), ...)``, one per Lines line
        at any depth: ``path`` is the tuple of segments from the configuration's model to the
        listed records; a change of a watched field of such a record (a mapped one, its link or
        its archiving) changes its document's payload; ``link`` is the line's many2one to the
        record listing it (``None`` for a many2many), whose change moves the line to another
        document."""
        self.ensure_one()
        levels = []
        todo = [((), line) for line in self.sudo().mapping_ids]
        while todo:
            prefix, line = todo.pop(0)
            if line.transform != "lines" or not line.model_name:
                continue
            parts = mapping.split_path(line.source_path)
            holder = self.env[line.model_name]
            for segment in parts[:-1]:
                holder = self.env[holder._fields[segment].comodel_name]
            field = holder._fields[parts[-1]]
            link = field.inverse_name if field.type == "one2many" else None
            names = {
                child.source_path.split(".")[0].strip()
                for child in line.child_line_ids
                if child.source_path
            }
            path = prefix + parts
            # an archived record leaves the list (some models archive instead of deleting)
            names |= {link, self.env[field.comodel_name]._active_name}
            levels.append((path, field.comodel_name, frozenset(names - {None}), link))
            todo.extend((path, child) for child in line.child_line_ids)
        return tuple(levels)

    def _line_documents(self, path, records, depth=None):
        """The documents whose Lines at ``path`` list ``records`` (records of the model reached
        after ``depth`` segments of ``path``, all of it by default), archived ones too."""
        self.ensure_one()
        models_on_path = [self.model_name]
        for segment in path[:-1]:
            models_on_path.append(self.env[models_on_path[-1]]._fields[segment].comodel_name)
        for position in reversed(range(len(path) if depth is None else depth)):
            if not records:
                break
            records = (
                self.env[models_on_path[position]]
                .sudo()
                .with_context(active_test=False)
                .search([(path[position], "in", records.ids)])
            )
        return records

    def _documents_of_lines(self, path, lines, old_holders=None):
        """The documents of ``lines`` (records listed at ``path``), and those the lines left:
        ``old_holders`` are the records that listed them before a move."""
        self.ensure_one()
        documents = self._line_documents(path, lines)
        if old_holders:
            documents |= self._line_documents(path, old_holders, len(path) - 1)
        return documents
