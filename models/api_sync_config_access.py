"""Who a configuration reads as, who may change it, where it may send, and its signing secrets.

A configuration never reads as superuser: records are read with the access rights of its
Integration User (model access, record rules, field groups). Only that user or a Settings
administrator may change what it reads or where it sends.
"""

from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError

from ..engine import mapping, targets
from . import compat
from .constants import ADMIN_GROUP, MANAGER_GROUP, USER_GROUP

ALLOWED_TARGETS_PARAMETER = "api_sync.allowed_targets"
DENY_PRIVATE_PARAMETER = "api_sync.deny_private_targets"


class ApiSyncConfig(models.Model):
    _inherit = "api.sync.config"

    integration_user_id = fields.Many2one(
        "res.users",
        required=True,
        copy=False,  # a copy reads as whoever makes it
        ondelete="restrict",
        tracking=True,
        default=lambda self: self._default_integration_user(),
        help="Records are read and sent with this user's access rights (record rules, field "
        "access): what this user cannot read is never sent. Defaults to the creator; only "
        "Settings administrators can choose another user.",
    )
    previous_signing_secret = fields.Char(
        groups=MANAGER_GROUP,
        copy=False,
        help="The signing secret before the last change: requests are signed with both until "
        "it expires, so receivers can be updated without downtime.",
    )
    previous_secret_expires_at = fields.Datetime(string="Previous Secret Valid Until", copy=False)
    secret_rotation_hours = fields.Integer(
        string="Old Secret Valid For (h)",
        default=24,
        help="When the signing secret changes, the old one keeps signing (next to the new one) "
        "for this many hours. 0: it stops at once.",
    )

    @api.model
    def _setup_security_groups(self):
        """The groups' category and the Manager group's users (security/api_sync_security.xml
        calls this on every install and update)."""
        compat.setup_groups(
            self.env,
            "api_sync.module_category_api_sync",
            [USER_GROUP, MANAGER_GROUP],
            {MANAGER_GROUP: ["base.user_root", "base.user_admin"]},
        )

    @api.model
    def _default_integration_user(self):
        if self.env.user._is_superuser():
            return self.env.ref("base.user_admin", raise_if_not_found=False)
        return self.env.user

    # -- who may change it --------------------------------------------------------------------

    # (create, write and unlink, in api_sync_config.py, call these checks)

    def _check_created_integration_user(self):
        """Refuse new configurations reading as another user, unless made by an
        administrator."""
        if not self._is_admin() and self.sudo().integration_user_id != self.env.user:
            raise AccessError(
                self.env._(
                    "Only Settings administrators can choose another Integration User than "
                    "yourself."
                )
            )

    def _forget_captured_data(self):
        """Another user reads from now on: pending events captured with the previous user's
        rights are captured again when sent, and deletions (whose record is gone) cancelled."""
        pending = (
            self.env["api.sync.log"]
            .sudo()
            .search(
                [
                    ("config_id", "in", self.ids),
                    ("state", "=", "pending"),
                    ("request_body", "!=", False),
                ]
            )
        )
        deletions = pending.filtered(lambda log: log.operation == "delete")
        deletions.write(
            {
                "state": "cancelled",
                "error_class": "IntegrationUserChanged",
                "error_message": self.env._(
                    "The configuration's Integration User changed after this deletion was "
                    "captured: it is not sent with the previous user's data."
                ),
            }
        )
        deletions._update_status()
        (pending - deletions).write({"request_body": False})

    def _is_admin(self):
        return self.env.su or self.env.user.has_group(ADMIN_GROUP)

    @api.model
    def _check_integration_user_choice(self, vals):
        user_id = vals.get("integration_user_id")
        if user_id and user_id != self.env.uid and not self._is_admin():
            raise AccessError(
                self.env._(
                    "Only Settings administrators can choose another Integration User than "
                    "yourself."
                )
            )

    def _check_can_change(self, vals=None):
        """Refuse a change by a manager who is neither this configuration's Integration User
        nor an administrator (they could redirect data that user reads), unless the change
        makes them the Integration User (it then reads with their own rights)."""
        vals = vals or {}
        self._check_integration_user_choice(vals)
        if self._is_admin() or vals.get("integration_user_id") == self.env.uid:
            return
        for config in self.sudo():
            if config.integration_user_id != self.env.user:
                raise AccessError(
                    self.env._(
                        "Configuration %(config)s reads data as %(user)s: only that user or a "
                        "Settings administrator can change it. To take it over, set yourself "
                        "as its Integration User (it then reads with your rights).",
                        config=config.name,
                        user=config.integration_user_id.name,
                    )
                )

    @api.constrains("integration_user_id")
    def _check_integration_user(self):
        for config in self.sudo():
            if config.integration_user_id._is_superuser():
                raise ValidationError(
                    self.env._(
                        "Integration User of %(config)s cannot be the superuser: choose a user "
                        "whose access rights fit what this configuration sends.",
                        config=config.name,
                    )
                )

    # -- reading as the integration user -----------------------------------------------------

    def _reader_env(self):
        """The environment records are read in: the Integration User's, never superuser."""
        self.ensure_one()
        context = dict(self.env.context)
        context.pop("allowed_company_ids", None)  # all of that user's companies
        return self.env(user=self.sudo().integration_user_id.id, su=False, context=context)

    def _not_readable_message(self):
        return self.env._(
            "The Integration User %(user)s cannot read this record: it was not sent.",
            user=self.sudo().integration_user_id.name,
        )

    def _check_path_readable(self, path, transform):
        """Raise ValidationError unless the Integration User reads every model and field of a
        mapping path (and the related model its last field points to)."""
        self.ensure_one()
        env = self._reader_env()
        model_name = self.model_name
        for segment in mapping.split_path(path):
            model = env[model_name]
            field = model._fields[segment]
            if not model.has_access("read") or not compat.field_readable(model, field):
                raise self._unreadable_path_error(path, f"{model_name}.{segment}")
            model_name = field.comodel_name
        if model_name and transform != "many2one_id" and not env[model_name].has_access("read"):
            raise self._unreadable_path_error(path, model_name)

    def _unreadable_path_error(self, path, what):
        return ValidationError(
            self.env._(
                "Field mapping of %(config)s: the Integration User %(user)s cannot read "
                "%(what)s, so the mapping line %(path)s cannot be sent. Map another field, or "
                "have an administrator choose an Integration User who may read it.",
                config=self.display_name,
                user=self.sudo().integration_user_id.name,
                what=what,
                path=path,
            )
        )

    # -- where it may send --------------------------------------------------------------------

    @api.model
    def _target_policy(self):
        """The outbound target policy from the system parameters (ValueError when invalid)."""
        params = self.env["ir.config_parameter"].sudo()
        deny = (params.get_param(DENY_PRIVATE_PARAMETER) or "").strip().lower()
        try:
            return targets.TargetPolicy.parse(
                params.get_param(ALLOWED_TARGETS_PARAMETER), deny in ("1", "true", "yes")
            )
        except ValueError as exc:
            raise ValueError(
                self.env._(
                    "System parameter %(param)s: %(error)s",
                    param=ALLOWED_TARGETS_PARAMETER,
                    error=exc,
                )
            ) from None

    def _check_target(self):
        """Refuse an endpoint the outbound target policy does not allow."""
        for config in self:
            try:
                targets.check_url(config.endpoint_url, self._target_policy())
            except ValueError as exc:
                raise ValidationError(
                    self.env._(
                        "Endpoint URL of %(config)s is not an allowed outbound target: "
                        "%(error)s. Ask an administrator to allow it (system parameters "
                        "%(allowed)s and %(deny)s).",
                        config=config.display_name,
                        error=exc,
                        allowed=ALLOWED_TARGETS_PARAMETER,
                        deny=DENY_PRIVATE_PARAMETER,
                    )
                ) from None

    # -- signing secret rotation --------------------------------------------------------------

    def _keep_previous_secret(self, new_secret):
        """Before the signing secret changes, keep the old one signing for a while (clearing
        the secret revokes both at once)."""
        now = fields.Datetime.now()
        for config in self.sudo():
            old = config.signing_secret
            if not new_secret:
                config.write(
                    {"previous_signing_secret": False, "previous_secret_expires_at": False}
                )
                continue
            if not old or old == new_secret:
                continue
            hours = config.secret_rotation_hours
            config.write(
                {
                    "previous_signing_secret": old if hours > 0 else False,
                    "previous_secret_expires_at": fields.Datetime.add(now, hours=hours)
                    if hours > 0
                    else False,
                }
            )

    def _previous_secrets(self):
        config = self.sudo()
        expires = config.previous_secret_expires_at
        if config.previous_signing_secret and expires and expires > fields.Datetime.now():
            return (config.previous_signing_secret,)
        return ()

    @api.constrains("secret_rotation_hours")
    def _check_secret_rotation_hours(self):
        for config in self:
            if config.secret_rotation_hours < 0:
                raise ValidationError(
                    self.env._(
                        "Old Secret Valid For of %(config)s cannot be negative (0: at once).",
                        config=config.display_name,
                    )
                )
