from . import test_config
from . import test_mapping
from . import test_security
from . import test_delivery
from . import test_automation
from . import test_batch_sync
from . import test_recovery
from . import test_lock_conflicts
