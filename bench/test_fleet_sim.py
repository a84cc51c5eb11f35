"""The fleet model's scaling rules, and the template deploying the rules the model was run with."""

from pathlib import Path

import yaml

import fleet_sim as fleet
from fleet_sim import Rules, next_desired, simulate

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


def test_the_first_message_starts_one_instance_within_a_minute():
    assert next_desired(Rules(), 0, [(1, 1, 0)]) == 1
    assert next_desired(Rules(), 0, [(0, 0, 0)]) == 0
    out = simulate([(5.0, 30.0)], Rules())
    # Decided at the next minute, then the instance's start-up.
    assert out.waits[0] <= 60 + fleet.START_UP_S + 1


def test_the_fleet_goes_back_to_zero_after_the_quiet_period():
    quiet = [(0, 0, 1)] * fleet.SCALE_IN_DATAPOINTS
    assert next_desired(Rules(), 1, quiet) == 0
    assert next_desired(Rules(), 1, quiet[1:]) == 1
    out = simulate([(5.0, 30.0)], Rules(), tail_s=3 * 3600.0)
    # Start-up, the job, 15 quiet minutes and a minute's rounding; not the three hours that follow.
    assert out.instance_seconds <= fleet.START_UP_S + 30 + (fleet.SCALE_IN_DATAPOINTS + 3) * 60


def test_never_more_instances_than_the_maximum():
    rules = Rules(max_instances=3)
    assert next_desired(rules, 1, [(1000, 997, 1)] * 5) == 3
    burst = fleet.traces()["burst: 500 jobs in 10 min"]
    out = simulate(burst, rules)
    assert out.peak_instances == 3
    assert len(out.waits) == len(burst)


def test_scale_out_waits_for_three_datapoints_and_aims_at_the_target():
    rules = Rules(backlog_target=5)
    busy = (40, 30, 2)  # 20 jobs per instance
    assert next_desired(rules, 2, [busy, busy]) == 2
    assert next_desired(rules, 2, [busy] * 3) == 8


def test_the_chosen_target_is_the_one_the_model_supports():
    assert fleet.model_target() == fleet.BACKLOG_TARGET
    steady = fleet.traces()["steady day"]
    assert simulate(steady, Rules()).percentile(0.95) <= fleet.LATENCY_GOAL_S


class _Cfn(yaml.SafeLoader):
    """YAML with CloudFormation's short tags kept as {tag: value}."""


_Cfn.add_multi_constructor(
    "!",
    lambda loader, suffix, node: {
        suffix: (
            loader.construct_scalar(node)
            if isinstance(node, yaml.ScalarNode)
            else loader.construct_sequence(node)
            if isinstance(node, yaml.SequenceNode)
            else loader.construct_mapping(node)
        )
    },
)


def test_the_template_deploys_the_modelled_rules():
    template = yaml.load(TEMPLATE.read_text(), Loader=_Cfn)
    params, res = template["Parameters"], template["Resources"]
    assert params["RunnerBacklogTarget"]["Default"] == fleet.BACKLOG_TARGET
    assert params["RunnerMaxInstances"]["Default"] == fleet.MAX_INSTANCES
    group = res["RunnerGroup"]["Properties"]
    assert group["MinSize"] == "0"
    assert group["MaxSize"] == {"Ref": "RunnerMaxInstances"}

    tracking = res["RunnerBacklogScaling"]["Properties"]["TargetTrackingConfiguration"]
    assert tracking["TargetValue"] == {"Ref": "RunnerBacklogTarget"}
    metrics = {m["Id"]: m for m in tracking["CustomizedMetricSpecification"]["Metrics"]}
    assert metrics["backlog_per_instance"]["Expression"] == "(visible + running) / instances"
    assert metrics["visible"]["MetricStat"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert metrics["running"]["MetricStat"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesNotVisible"
    assert metrics["instances"]["MetricStat"]["Metric"]["MetricName"] == "GroupInServiceInstances"

    alarm = res["RunnerFromZeroAlarm"]["Properties"]
    assert alarm["DatapointsToAlarm"] == alarm["EvaluationPeriods"] == fleet.FROM_ZERO_DATAPOINTS
    assert alarm["Threshold"] == 1
    zero = {m["Id"]: m for m in alarm["Metrics"]}
    assert zero["waiting_with_no_runner"]["Expression"] == "IF(desired == 0, visible, 0)"
    assert all(m["MetricStat"]["Period"] == 60 for m in zero.values() if "MetricStat" in m)
    step = res["RunnerFromZeroScaling"]["Properties"]
    assert (step["AdjustmentType"], step["StepAdjustments"][0]["ScalingAdjustment"]) == ("ExactCapacity", 1)
