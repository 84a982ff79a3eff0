"""The local AWS the stack plays against, all in this process: moto's threaded server with our ECR extension,
the HTTPS endpoint standing in for CloudFormation's response bucket, and the Lambda Invoke emulator.

Also what the registry needs to outlive the process (moto keeps state in memory): a JSON snapshot of secrets,
cache rules (with their creation times), creation templates, repositories with their images, the image expiry schedules,
the provider's ownership tables with their claims, the provider functions' environments, and the stacks' alarms,
dashboards and alarm topics (tools/stack_player/monitoring.py), saved after a run and restored before the next.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from moto.ecr.models import ecr_backends
from moto.secretsmanager.models import secretsmanager_backends

from emulation import dynamodb, iam, moto_ecr
from emulation.cloudformation import ACCOUNT_ID, REGION, ResponseEndpoint, start_response_endpoint
from emulation.lambda_emulator import LambdaEmulator, start_lambda_emulator
from emulation.moto_ecr import faults
from emulation.moto_ecr.models import state_of
from emulation.moto_server import FAKE_AWS_ENVIRONMENT, start_moto_server
from tools import lambda_runtime
from tools.stack_player.monitoring import Monitoring
from tools.stack_player.progress import Progress
from tools.stack_player.roles import Roles
from tools.stack_player.warm import Registries

__all__ = ["ACCOUNT_ID", "REGION", "LocalAws"]

SECRET_ARN = re.compile(r"^arn:aws[\w-]*:secretsmanager:[\w-]+:\d{12}:secret:(?P<id>.+)$")
# A stub secret for a credential the local endpoint cannot read: ECR only checks its shape.
STUB_SECRET_VALUE = json.dumps({"username": "stack-player", "accessToken": "not-a-real-token"})
# Tags a stub secret with the stack it was made for, so that deleting the stack deletes it.
STUB_TAG = "stack-player:stub-for-stack"


@dataclass
class LocalAws:
    moto_url: str
    responses: ResponseEndpoint
    lambda_emulator: LambdaEmulator | None = None
    # The provider function's code: the `sam build` output's function folder, run in a clean python3.13 as on
    # Lambda; None runs the handler from src/ in this process.
    built_function: Path | None = None
    # Each provider function's environment variables (AWS::Lambda::Function Environment), by function name.
    functions: dict[str, dict[str, str]] = field(default_factory=dict)
    # The in-process execution environment, held by one invocation at a time (the Lambda emulator's too).
    environment_lock: threading.Lock = field(default_factory=threading.Lock)
    # Each function's execution role (its ARN) and log group, by function name.
    function_roles: dict[str, str] = field(default_factory=dict)
    function_log_groups: dict[str, str] = field(default_factory=dict)
    # The native IAM resources of the played stacks: what each role may do, as emulation/iam evaluates it.
    roles: Roles = field(default_factory=Roles)
    # Where the built function's output (its stdout and stderr: the Powertools log lines) is appended, one block per
    # invocation, as CloudWatch Logs would keep it; None drops it. (The in-process handler writes to sys.stdout.)
    provider_log: Path | None = None
    # The local upstream registry and ECR registry endpoint a Custom::CacheWarmUp pulls through (warm.py).
    registries: Registries | None = None
    _log_lock: threading.Lock = field(default_factory=threading.Lock)
    _stops: list[Callable[[], None]] = field(default_factory=list)
    # The played stacks' alarms, dashboards, alarm topics and health check schedule, made in moto.
    monitoring: Monitoring = field(init=False)

    def __post_init__(self) -> None:
        self.monitoring = Monitoring(self.client)

    @classmethod
    def start(cls, built_function: Path | None = None) -> LocalAws:
        """Start everything and point this process's AWS clients at it (the handler creates its clients later).
        The Lambda Invoke emulator serves the provider function too, so that a request it continues in an
        asynchronous self-invocation runs here."""
        server, moto_url = start_moto_server()
        responses = start_response_endpoint()
        local = cls(moto_url, responses, built_function=built_function, _stops=[server.stop, responses.close])
        os.environ.update(local.environment())
        emulator = start_lambda_emulator(local.invoke_provider)
        emulator.environment = local.environment_lock
        local.lambda_emulator = emulator
        local._stops.append(emulator.close)
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = emulator.url
        local.registries = Registries.start()
        local._stops.append(local.registries.close)
        return local

    def environment(self) -> dict[str, str]:
        """Fake credentials, every endpoint on moto, and trust in the response endpoint's local CA."""
        return {
            **FAKE_AWS_ENVIRONMENT,
            "AWS_ENDPOINT_URL": self.moto_url,
            "SSL_CERT_FILE": self.responses.ca_file,
        }

    def close(self) -> None:
        for stop in reversed(self._stops):
            stop()

    def client(self, service: str) -> Any:
        return iam.admin_client(service, region_name=REGION, endpoint_url=self.moto_url)

    def reset(self) -> None:
        """An empty account: moto's state, every armed fault and every function cleared."""
        requests.post(f"{self.moto_url}/moto-api/reset", timeout=10)
        faults.reset()
        dynamodb.reset()
        self.functions.clear()
        self.function_roles.clear()
        self.function_log_groups.clear()
        self.roles = Roles()
        self.monitoring = Monitoring(self.client)

    def invocations(self) -> int:
        """Invocations the Lambda emulator has served (the provider's continuations), 0 without it."""
        return len(self.lambda_emulator.invocations) if self.lambda_emulator else 0

    def settle(self) -> None:
        """Wait until every invocation the Lambda emulator started (a continuation) has ended."""
        if self.lambda_emulator is not None:
            self.lambda_emulator.wait_idle()

    def busy(self) -> bool:
        """Whether an invocation the Lambda emulator started (a continuation) is still running."""
        emulator = self.lambda_emulator
        return emulator is not None and any(thread.is_alive() for thread in list(emulator.running))

    # Secrets

    def ensure_secrets(self, arns: Iterable[str], stack_name: str) -> list[str]:
        """Create a stub for each Secrets Manager ARN that does not exist here, under exactly that ARN, tagged with
        the stack. A secret of the same name under another ARN was re-created (a new random suffix), as a
        credential rotation does: it is replaced. Returns what was done, one line each."""
        notes = []
        secrets = self.client("secretsmanager")
        for arn in arns:
            match = SECRET_ARN.match(arn)
            if match is None or self._secret_exists(arn):
                continue
            # The ARN ends in -XXXXXX, which Secrets Manager adds to the name.
            name = re.sub(r"-[A-Za-z0-9]{6}$", "", match["id"])
            recreated = self._secret_exists(name)
            if recreated:
                secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
            self._create_secret(name, STUB_SECRET_VALUE, arn, [{"Key": STUB_TAG, "Value": stack_name}])
            done = "re-created the secret" if recreated else "created a stub secret"
            notes.append(f"{done} {name} as {arn} (the local endpoint cannot read the real one)")
        return notes

    def delete_stub_secrets(self, stack_name: str) -> list[str]:
        """Delete the stub secrets made for `stack_name`. Returns what was deleted, one line each."""
        secrets = self.client("secretsmanager")
        stubs = [secret for page in secrets.get_paginator("list_secrets").paginate() for secret in page["SecretList"]
                 if {"Key": STUB_TAG, "Value": stack_name} in secret.get("Tags", [])]  # fmt: skip
        for secret in stubs:
            secrets.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
        return [f"deleted the stub secret {secret['ARN']}" for secret in stubs]

    def _secret_exists(self, secret_id: str) -> bool:
        try:
            self.client("secretsmanager").describe_secret(SecretId=secret_id)
        except self.client("secretsmanager").exceptions.ResourceNotFoundException:
            return False
        return True

    def _create_secret(self, name: str, value: str, arn: str, tags: list[dict[str, str]]) -> None:
        self.client("secretsmanager").create_secret(Name=name, SecretString=value, Tags=tags)
        # moto draws a random ARN suffix; the stack and its rules refer to the original ARN, so keep it.
        secretsmanager_backends[ACCOUNT_ID][REGION].secrets[name].arn = arn

    # The provider function, and the native resources it relies on

    def invoke_provider(self, event: dict[str, Any], context: Any, output: list[str] | None = None) -> Any:
        """Run the provider function on an event, with the environment its template gives it and the credentials
        of its execution role (emulation/iam evaluates each call with the policies the role has now). Returns what
        the function returned; `output`, when given, receives what it printed on stdout (its EMF metrics)."""
        function = str(event.get("ServiceToken", "")).rsplit(":", 1)[-1]
        variables = self.function_environment(function)
        credentials = self._role_credentials(function)
        if self.built_function is None:
            from ecr_cache_provider import handler  # noqa: PLC0415 - loaded at the first request, as a cold start

            # One invocation at a time, as in one Lambda execution environment (the handler's module state is that
            # environment's, and so is the process environment acting_as sets), the provider's follow-up invocations
            # included; and nothing left behind.
            with self._environment(), iam.acting_as(credentials, variables), _stdout_copied(output):
                return handler.lambda_handler(event, context)
        environment = lambda_runtime.lambda_environment(self.moto_url, self.responses.ca_file, variables, credentials)
        if self.lambda_emulator is not None:  # the provider's own follow-up invocations
            environment["AWS_ENDPOINT_URL_LAMBDA"] = self.lambda_emulator.url
        seconds = context.get_remaining_time_in_millis() / 1000
        invocation = lambda_runtime.invoke(self.built_function, event, environment, timeout_seconds=seconds)
        self._log_invocation(event, invocation)
        if invocation.outcome != "returned":
            raise RuntimeError(f"The built function {invocation.outcome}:\n{invocation.output}")
        if output is not None:
            output.append(invocation.output)
        return invocation.returned

    def _log_invocation(self, event: dict[str, Any], invocation: lambda_runtime.Invocation) -> None:
        """Append what the built function printed to the provider log, under a line naming the invocation (as Lambda's
        START and REPORT lines frame it in CloudWatch Logs)."""
        if self.provider_log is None:
            return
        what = " ".join(str(event[key]) for key in ("RequestType", "LogicalResourceId") if key in event) or "Sweep"
        if "CacheProviderProgress" in event:  # continuation.PROGRESS_KEY: a follow-up the provider invoked itself
            what += ", continued"
        with self._log_lock, self.provider_log.open("a") as log:
            log.write(f"--- {what} ({invocation.outcome}, {invocation.seconds:.2f} s)\n{invocation.output}")
            if invocation.output and not invocation.output.endswith("\n"):
                log.write("\n")

    def _environment(self) -> Any:
        """The in-process execution environment: held by one invocation at a time. An invocation that is the
        Lambda emulator's own (a follow-up) already holds it."""
        emulator = self.lambda_emulator
        if emulator is not None and threading.current_thread() in emulator.running:
            return contextlib.nullcontext()
        return self.environment_lock

    def _role_credentials(self, function: str) -> dict[str, str]:
        """The credentials Lambda gives the function: its role's, granted with the policies the role has now, and
        the invocation's logs written as the role (Lambda drops them when it may not). A function whose role no
        played stack defines runs as the harness, evaluated by nothing."""
        role = self.function_roles.get(function)
        if role is None:
            return {}
        principal = self.roles.principal(role, function)
        log_group = self.function_log_groups.get(function, f"/aws/lambda/{function}")
        stream = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{log_group}:log-stream:local"
        with suppress(iam.Denied):
            iam.check(principal, "Lambda writing the function's logs",
                      [iam.Authorization(action, stream) for action in ("logs:CreateLogStream", "logs:PutLogEvents")],
                      REGION)  # fmt: skip
        return iam.grant(principal)

    def emulate_native(self, resource_type: str, physical_id: str, properties: dict[str, Any]) -> None:
        """Make what the provider needs of a native resource: the ownership table, the function's environment and
        role, a native cache rule (a stack moving from AWS::ECR::PullThroughCacheRule), the image expiry schedule
        group, and the IAM roles and policies (emulation/iam). The table, rule and group are made once (a retained
        one, as the move needs, is left as it is anyway); roles, policies and functions follow every update."""
        self.roles.apply(resource_type, physical_id, properties)
        self.monitoring.apply(resource_type, physical_id, properties)
        if resource_type == "AWS::DynamoDB::Table":
            self.ensure_table(physical_id, properties)
        elif resource_type == "AWS::ECR::PullThroughCacheRule":
            self.ensure_native_rule(properties)
        elif resource_type == "AWS::Scheduler::ScheduleGroup":
            self.ensure_schedule_group(physical_id)
        elif resource_type == "AWS::Lambda::Function":
            variables = properties.get("Environment", {}).get("Variables", {})
            self.functions[physical_id] = {name: str(value) for name, value in variables.items()}
            self.function_roles[physical_id] = str(properties.get("Role", ""))
            log_group = properties.get("LoggingConfig", {}).get("LogGroup")
            if log_group:
                self.function_log_groups[physical_id] = str(log_group)

    def native_deleted(self, resource_type: str, physical_id: str) -> None:
        """A native resource was deleted: IAM roles and policies stop granting, and the image expiry schedule group
        goes (it would otherwise outlive the stack in the state folder); the rest is not emulated."""
        self.roles.remove(resource_type, physical_id)
        self.monitoring.delete(resource_type, physical_id)
        if resource_type == "AWS::Scheduler::ScheduleGroup":
            scheduler = self.client("scheduler")
            with suppress(scheduler.exceptions.ResourceNotFoundException):
                scheduler.delete_schedule_group(Name=physical_id)

    def ensure_table(self, name: str, properties: dict[str, Any]) -> None:
        """An AWS::DynamoDB::Table with the template's key, unless it exists: the ownership table is retained when
        its stack goes, as on AWS."""
        dynamodb = self.client("dynamodb")
        if name in dynamodb.list_tables()["TableNames"]:
            return
        dynamodb.create_table(
            TableName=name,
            KeySchema=properties["KeySchema"],
            AttributeDefinitions=properties["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )

    def ensure_native_rule(self, properties: dict[str, Any]) -> None:
        ecr = self.client("ecr")
        existing = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
        if any(rule["ecrRepositoryPrefix"] == properties["EcrRepositoryPrefix"] for rule in existing):
            return
        names = ("EcrRepositoryPrefix", "UpstreamRegistryUrl", "UpstreamRegistry", "CredentialArn", "CustomRoleArn",
                 "UpstreamRepositoryPrefix")  # fmt: skip
        ecr.create_pull_through_cache_rule(
            **{name[0].lower() + name[1:]: str(properties[name]) for name in names if properties.get(name)}
        )

    @staticmethod
    def function_arn(function: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function}"

    def function_environment(self, function: str) -> dict[str, str]:
        """The environment of the function (its name); empty for one never deployed here."""
        return self.functions.get(function, {})

    # The registry across runs

    def save_registry(self, path: Path, progress: Progress) -> None:
        ecr, secrets = self.client("ecr"), self.client("secretsmanager")
        snapshot: dict[str, Any] = {"secrets": [], "rules": [], "templates": [], "repositories": []}
        snapshot["tables"] = self._tables()
        snapshot["functions"] = self.functions
        snapshot["function_roles"] = self.function_roles
        snapshot["function_log_groups"] = self.function_log_groups
        snapshot["iam"] = self.roles.to_saved()
        for page in secrets.get_paginator("list_secrets").paginate():
            for secret in page["SecretList"]:
                value = secrets.get_secret_value(SecretId=secret["ARN"]).get("SecretString", "")
                snapshot["secrets"].append(
                    {"name": secret["Name"], "arn": secret["ARN"], "value": value, "tags": secret.get("Tags", [])}
                )
        for page in ecr.get_paginator("describe_pull_through_cache_rules").paginate():
            for rule in page["pullThroughCacheRules"]:
                keys = ("ecrRepositoryPrefix", "upstreamRegistryUrl", "upstreamRegistry", "credentialArn",
                        "customRoleArn", "upstreamRepositoryPrefix", "createdAt")  # fmt: skip
                snapshot["rules"].append({key: rule[key] for key in keys if rule.get(key)})
        for template in ecr.describe_repository_creation_templates().get("repositoryCreationTemplates", []):
            kept = {key: value for key, value in template.items() if key not in ("createdAt", "updatedAt")}
            snapshot["templates"].append(kept)
        snapshot["repositories"] = registry_repositories(ecr, progress, "Saving the registry")
        for repository in snapshot["repositories"]:
            repository["images"] = moto_ecr.image_records(ACCOUNT_ID, REGION, repository["name"])
        snapshot["schedule_groups"] = self._schedule_groups()
        snapshot["schedules"] = self._schedules()
        snapshot["monitoring"] = self.monitoring.to_saved()
        # Tokens the emulated upstream refuses (make local --break revoke-credential): fingerprints, not values; a
        # deleted secret's are forgotten (a stub made again under its ARN after make local-delete logs in).
        secret_arns = {secret["arn"] for secret in snapshot["secrets"]}
        revoked = faults.revoked_upstream_credentials()
        snapshot["revoked_credentials"] = {arn: refused for arn, refused in revoked.items() if arn in secret_arns}
        # The registry-wide settings the stack merges into (Custom::RegistryPolicyStatements, ...ScanningFilters).
        try:
            snapshot["registry_policy"] = ecr.get_registry_policy()["policyText"]
        except ecr.exceptions.RegistryPolicyNotFoundException:
            snapshot["registry_policy"] = None
        snapshot["registry_scanning"] = ecr.get_registry_scanning_configuration()["scanningConfiguration"]
        path.parent.mkdir(parents=True, exist_ok=True)
        written = path.with_suffix(".tmp")
        written.write_text(json.dumps(snapshot, indent=2, default=str) + "\n")
        written.replace(path)  # whole or not at all

    def restore_registry(self, path: Path, progress: Progress) -> None:
        """Reset moto, then re-create what the snapshot holds (nothing when there is none)."""
        self.reset()
        if not path.exists():
            return
        snapshot = json.loads(path.read_text())
        ecr = self.client("ecr")
        for secret in snapshot["secrets"]:
            self._create_secret(secret["name"], secret["value"], secret["arn"], secret.get("tags", []))
        for rule in snapshot["rules"]:
            created_at = rule.pop("createdAt", None)
            ecr.create_pull_through_cache_rule(**rule)
            if created_at:  # as it was made, not as it was restored
                restored = state_of(ecr_backends[ACCOUNT_ID][REGION]).rules[rule["ecrRepositoryPrefix"]]
                restored.created_at = restored.updated_at = datetime.fromisoformat(created_at)
        self._restore_tables(snapshot.get("tables", []))
        self.functions.update(snapshot.get("functions", {}))
        self.function_roles.update(snapshot.get("function_roles", {}))
        self.function_log_groups.update(snapshot.get("function_log_groups", {}))
        self.roles = Roles.from_saved(snapshot.get("iam"))
        for template in snapshot["templates"]:
            ecr.create_repository_creation_template(**template)
        repositories = snapshot["repositories"]
        with progress.step("Restoring the registry", "repositories") as step:
            for index, repository in enumerate(repositories):
                ecr.create_repository(repositoryName=repository["name"])
                if repository.get("lifecyclePolicy"):
                    ecr.put_lifecycle_policy(
                        repositoryName=repository["name"], lifecyclePolicyText=repository["lifecyclePolicy"]
                    )
                for image in repository.get("images", []):
                    moto_ecr.seed_image_record(ACCOUNT_ID, REGION, repository["name"], image)
                step.update(index + 1, len(repositories))
        for group in snapshot.get("schedule_groups", []):  # those without schedules too (a stack's, still empty)
            self.ensure_schedule_group(group)
        self._restore_schedules(snapshot.get("schedules", []))
        self.monitoring.restore(snapshot.get("monitoring"))
        faults.restore_revocations(snapshot.get("revoked_credentials", {}))
        if snapshot.get("registry_policy"):
            ecr.put_registry_policy(policyText=snapshot["registry_policy"])
        scanning = snapshot.get("registry_scanning")
        if scanning and (scanning.get("rules") or scanning.get("scanType", "BASIC") != "BASIC"):
            ecr.put_registry_scanning_configuration(scanType=scanning["scanType"], rules=scanning.get("rules", []))

    def _schedule_groups(self) -> list[str]:
        return [group["Name"] for group in self.client("scheduler").list_schedule_groups()["ScheduleGroups"]]

    def _schedules(self) -> list[dict[str, Any]]:
        """Every schedule (the image expiry sweeps'), as CreateSchedule takes it."""
        scheduler = self.client("scheduler")
        schedules = []
        for group in scheduler.list_schedule_groups()["ScheduleGroups"]:
            for listed in scheduler.list_schedules(GroupName=group["Name"])["Schedules"]:
                found = scheduler.get_schedule(Name=listed["Name"], GroupName=group["Name"])
                keys = ("Name", "GroupName", "Description", "ScheduleExpression", "FlexibleTimeWindow", "State",
                        "Target")  # fmt: skip
                schedules.append({key: found[key] for key in keys if key in found})
        return schedules

    def _restore_schedules(self, schedules: list[dict[str, Any]]) -> None:
        scheduler = self.client("scheduler")
        for schedule in schedules:
            self.ensure_schedule_group(schedule["GroupName"])
            scheduler.create_schedule(**schedule)

    def ensure_schedule_group(self, name: str) -> None:
        scheduler = self.client("scheduler")
        if name not in [group["Name"] for group in scheduler.list_schedule_groups()["ScheduleGroups"]]:
            scheduler.create_schedule_group(Name=name)

    def _tables(self) -> list[dict[str, Any]]:
        dynamodb = self.client("dynamodb")
        tables = []
        for name in dynamodb.list_tables()["TableNames"]:
            description = dynamodb.describe_table(TableName=name)["Table"]
            items = [item for page in dynamodb.get_paginator("scan").paginate(TableName=name) for item in page["Items"]]
            keys = {"KeySchema": description["KeySchema"], "AttributeDefinitions": description["AttributeDefinitions"]}
            tables.append({"name": name, **keys, "items": [_saved(item) for item in items]})
        return tables

    def _restore_tables(self, tables: list[dict[str, Any]]) -> None:
        dynamodb = self.client("dynamodb")
        for table in tables:
            self.ensure_table(table["name"], table)
            for item in table["items"]:
                dynamodb.put_item(TableName=table["name"], Item=_restored(item))

    # Cached repositories

    def seed_repositories(self, prefixes: list[str], count: int, progress: Progress) -> list[str]:
        """Pull `count` images through the cache rules at `prefixes` (round robin), as a first pull creates
        repositories; their names. Existing repositories are left as they are, so seeding twice changes nothing."""
        if not prefixes:
            return []
        names = []
        with progress.step("Seeding repositories", "repositories") as step:
            for index in range(count):
                prefix = prefixes[index % len(prefixes)]
                name = f"seed/repository-{index:05d}" if prefix == "ROOT" else f"{prefix}/seed/repository-{index:05d}"
                moto_ecr.simulate_cached_pull(ACCOUNT_ID, REGION, name)
                names.append(name)
                step.update(index + 1, count)
        return names

    def lifecycle_policy_counts(self) -> tuple[int, int]:
        """(repositories with a lifecycle policy, repositories), read in-process: cheap enough to poll."""
        repositories = ecr_backends[ACCOUNT_ID][REGION].repositories.copy().values()  # copy(): atomic, while it changes
        return sum(1 for repository in repositories if repository.lifecycle_policy), len(repositories)


@contextlib.contextmanager
def _stdout_copied(output: list[str] | None) -> Iterator[None]:
    """What the in-process handler prints on stdout during the block, appended to `output` (None: nothing is
    copied) and still written where stdout went."""
    if output is None:
        yield
        return
    written, stdout = io.StringIO(), sys.stdout
    try:
        with contextlib.redirect_stdout(written):
            yield
    finally:
        output.append(written.getvalue())
        stdout.write(written.getvalue())


def registry_repositories(ecr: Any, progress: Progress, label: str) -> list[dict[str, Any]]:
    """Every repository with its lifecycle policy text (None without one)."""
    names = [repository["repositoryName"] for page in ecr.get_paginator("describe_repositories").paginate()
             for repository in page["repositories"]]  # fmt: skip
    repositories = []
    with progress.step(label, "repositories") as step:
        for name in names:
            try:
                policy = ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]
            except ecr.exceptions.LifecyclePolicyNotFoundException:
                policy = None
            repositories.append({"name": name, "lifecyclePolicy": policy})
            step.update(len(repositories), len(names))
    return repositories


# A binary attribute (a resource record's Declared) saved as base64 text in the JSON snapshot: the bytes themselves
# do not survive JSON, and their text sent back as B would be encoded again, growing at every round.
SAVED_BINARY = "B64"


def _saved(item: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {SAVED_BINARY: base64.b64encode(value["B"]).decode()} if "B" in value else value
        for name, value in item.items()
    }


def _restored(item: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {"B": base64.b64decode(value[SAVED_BINARY])} if SAVED_BINARY in value else value
        for name, value in item.items()
    }
