from . import metrics
from . import inbound
