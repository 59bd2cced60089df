"""The metrics-as-code DSL: pure, immutable definitions that validate when created."""

from rta.dsl.aggregates import average as average
from rta.dsl.aggregates import count as count
from rta.dsl.aggregates import distinct as distinct
from rta.dsl.aggregates import maximum as maximum
from rta.dsl.aggregates import minimum as minimum
from rta.dsl.aggregates import quantile as quantile
from rta.dsl.aggregates import total as total
from rta.dsl.alert import Alert as Alert
from rta.dsl.alert import alert as alert
from rta.dsl.alert import no_events as no_events
from rta.dsl.channels import email as email
from rta.dsl.channels import slack as slack
from rta.dsl.channels import webhook as webhook
from rta.dsl.definitions import Definitions as Definitions
from rta.dsl.definitions import definitions as definitions
from rta.dsl.expr import col as col
from rta.dsl.metric import Metric as Metric
from rta.dsl.metric import metric as metric
from rta.dsl.rollup import Rollup as Rollup
from rta.dsl.rollup import rollup as rollup
from rta.dsl.stream import Stream as Stream
from rta.dsl.stream import stream as stream
