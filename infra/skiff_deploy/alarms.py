"""Alarms that say the controllers are falling behind or dropping work: the age of the oldest stream
record each stream function has yet to process, and anything in the failure queue.

They have no actions by default (an SNS topic is the user's choice: `skiff:alarmTopicArn`).
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

ITERATOR_AGE_THRESHOLD_MS = 60_000
"""A minute behind: well past the 1 s batching window and a resync period."""


def alarms(cluster: str, *, stream_functions: dict[str, aws.lambda_.Function], failures: aws.sqs.Queue,
           topic_arn: str | None, tags: dict[str, str]) -> list[aws.cloudwatch.MetricAlarm]:
    actions = [topic_arn] if topic_arn else []
    out = []
    for name, fn in stream_functions.items():
        out.append(aws.cloudwatch.MetricAlarm(
            f"{name}-iterator-age", name=f"{cluster}-{name}-iterator-age",
            alarm_description=f"{name} is more than a minute behind the objects table's stream",
            namespace="AWS/Lambda", metric_name="IteratorAge", dimensions={"FunctionName": fn.name},
            statistic="Maximum", period=60, evaluation_periods=5, datapoints_to_alarm=3,
            threshold=ITERATOR_AGE_THRESHOLD_MS, comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching", alarm_actions=actions, ok_actions=actions, tags=tags))
    out.append(aws.cloudwatch.MetricAlarm(
        "stream-failures-alarm", name=f"{cluster}-stream-failures",
        alarm_description="stream batches gave up after retries (their records are in the failure queue)",
        namespace="AWS/SQS", metric_name="ApproximateNumberOfMessagesVisible",
        dimensions={"QueueName": failures.name}, statistic="Maximum", period=300, evaluation_periods=1,
        threshold=0, comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
        alarm_actions=actions, ok_actions=actions, tags=tags))
    pulumi.log.debug(f"{len(out)} alarms")
    return out
