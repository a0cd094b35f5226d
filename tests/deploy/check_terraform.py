#!/usr/bin/env python3
"""Checks terraform/ without a terraform binary (none can be installed where CI runs).

1. Every .tf file parses (python-hcl2), every reference (resource, data, var, local) and
   every variable a .tfvars sets is declared, and every checkov skip gives a reason.
2. Every environment variable a Lambda's code reads is set by Terraform for that Lambda,
   and Terraform sets none the code does not read.
3. Every AWS call a Lambda's code makes is granted by that Lambda's IAM policy, and the
   policy grants nothing the code (or Lambda itself, for it) does not need.
4. Every metric the CloudWatch dashboard plots is one that exists: a Lakehouse metric is
   emitted (`Metric::count("…")`, …) by the code of the function its dimension names; an
   AWS one is in the list below; per-shard Kinesis metrics are enabled on the stream; every
   placeholder of the template is given by `templatefile`.

The code side is read from the Rust sources: every workspace crate each Lambda package
links (from `cargo metadata`, so it follows the code), their
`required_env`/`env_or`/`env::var` names and clap flags' `env = "…"`, and their AWS SDK calls (`.get_item()` …).
Exit status 1 with one line per problem.
"""

import json
import pathlib
import re
import sys

import hcl2

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
from cargo_graph import Graph, metadata  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
TF = ROOT / "terraform"

# The package of each Lambda (its binary has the same name).
LAMBDAS = {
    "ingest": "lakehouse-ingest-lambda",
    "compact": "lakehouse-compact-lambda",
    "commit": "lakehouse-commit-lambda",
}
_GRAPH = []

# Variables the runtime sets or AWS tooling reads, never Terraform's business.
PLATFORM_ENV = {"AWS_ENDPOINT_URL", "AWS_LAMBDA_FUNCTION_NAME"}

# AWS SDK calls (client method -> IAM action), per client crate.
SDK_CALLS = {
    "dynamodb": {
        "get_item": "dynamodb:GetItem",
        "put_item": "dynamodb:PutItem",
        "update_item": "dynamodb:UpdateItem",
        "delete_item": "dynamodb:DeleteItem",
        "query": "dynamodb:Query",
        "scan": "dynamodb:Scan",
        "batch_write_item": "dynamodb:BatchWriteItem",
    },
    "glue": {
        "get_database": "glue:GetDatabase",
        "create_database": "glue:CreateDatabase",
        "get_table": "glue:GetTable",
        "create_table": "glue:CreateTable",
        "update_table": "glue:UpdateTable",
        "delete_table": "glue:DeleteTable",
    },
}

# What delta-rs and our object-store calls do on S3: list the log, read and conditionally
# write objects, delete: compaction (vacuum, expired log cleanup), ingest (a grouped batch
# whose hand-over lost deletes its files), the committer (large manifests' bodies).
S3_ACTIONS = {
    "ingest": {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
    "compact": {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
    "commit": {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
}

# What Lambda itself does with the function's role for it.
PLATFORM_ACTIONS = {
    "ingest": {
        # the Kinesis event source mapping polls with the function's role
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
        "kms:Decrypt",
        # the on-failure destination of the mapping
        "sqs:SendMessage",
    },
    "compact": {"sqs:SendMessage"},  # its dead-letter queue
    "commit": {
        # the DynamoDB stream event source mapping polls with the function's role
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        # the on-failure destination of the mapping
        "sqs:SendMessage",
    },
}
COMMON_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}


def graph():
    if not _GRAPH:
        _GRAPH.append(Graph(metadata()))
    return _GRAPH[0]


def rust_sources(lambda_name):
    """Every Rust source of the Lambda's package and of the workspace crates it links (their
    libraries: a Lambda package may use another's, e.g. ingest the committer's manifest log)."""
    g = graph()
    package = LAMBDAS[lambda_name]
    crates = [package] + sorted(c for c in g.closure(package) if c in g.members)
    sources = []
    for crate in crates:
        for path in g.source_dir(crate).rglob("*.rs"):
            # Another Lambda package's binary is not linked, only its library.
            if crate != package and (path.name == "main.rs" or "bin" in path.parts):
                continue
            sources.append(path)
    return sources


def strip_tests(text):
    """Drops `#[cfg(test)]` modules and `#![cfg(test)]` files: what tests read or call is
    not what runs."""
    cuts = [i for i in (text.find("#[cfg(test)]"), text.find("#![cfg(test)]")) if i >= 0]
    return text[: min(cuts)] if cuts else text


def env_read_by(lambda_name):
    names = set()
    # A clap flag's `env = "NAME"` is read too: a stage's options are flags and variables.
    pattern = re.compile(r'(?:(?:required_env|env_or|env::var|try_from_env)\(\s*|\benv\s*=\s*)"([A-Z0-9_]+)"')
    for path in rust_sources(lambda_name):
        names |= set(pattern.findall(strip_tests(path.read_text())))
    return names - PLATFORM_ENV


def actions_called_by(lambda_name):
    actions = set()
    for path in rust_sources(lambda_name):
        text = strip_tests(path.read_text())
        for service, calls in SDK_CALLS.items():
            if f"aws_sdk_{service}" not in text:
                continue
            for method, action in calls.items():
                if re.search(rf"\.{method}\(\)", text):
                    actions.add(action)
    return actions | S3_ACTIONS[lambda_name] | PLATFORM_ACTIONS[lambda_name] | COMMON_ACTIONS


def unquote(value):
    """python-hcl2 8 keeps string literals' quotes (keys included); 7 did not."""
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse_all():
    parsed, problems = {}, []
    for path in sorted(TF.rglob("*.tf")):
        try:
            with path.open() as f:
                parsed[path.name] = unquote(hcl2.load(f))
        except Exception as e:  # noqa: BLE001 - any parse failure is the finding
            problems.append(f"{path.relative_to(ROOT)}: does not parse: {e}")
    for path in sorted((TF / "env").glob("*.tfvars")):
        try:
            with path.open() as f:
                hcl2.load(f)
        except Exception as e:  # noqa: BLE001
            problems.append(f"{path.relative_to(ROOT)}: does not parse: {e}")
    return parsed, problems


def blocks(parsed, kind):
    for doc in parsed.values():
        for block in doc.get(kind, []):
            yield block


def terraform_env(parsed):
    """{lambda: set of variable names} from locals.functions[*].environment."""
    for block in blocks(parsed, "locals"):
        functions = block.get("functions")
        if not functions:
            continue
        common = set()
        for b in blocks(parsed, "locals"):
            if "lambda_common_env" in b:
                common = set(b["lambda_common_env"])
        out = {}
        for name, spec in functions.items():
            env = spec["environment"]
            # merge(local.lambda_common_env, {…}) parses as a string expression
            keys = set(re.findall(r"\b([A-Z][A-Z0-9_]+)\s*=", str(env)))
            if "lambda_common_env" in str(env):
                keys |= common
            out[name] = keys
        return out
    raise SystemExit("terraform: no locals.functions")


def terraform_actions(parsed):
    out = {}
    for block in blocks(parsed, "data"):
        for name, docs in block.get("aws_iam_policy_document", {}).items():
            if name not in LAMBDAS:
                continue
            actions = set()
            for statement in docs.get("statement", []):
                actions |= set(statement.get("actions", []))
            out[name] = actions
    return out


# What exactly-once per shard relies on (docs/guarantees.md): one batch per shard at a
# time, partial batch responses, and a failing batch retried until it lands.
EVENT_SOURCE_MAPPING = {
    "parallelization_factor": 1,
    "maximum_retry_attempts": -1,
    "maximum_record_age_in_seconds": -1,
    "function_response_types": ["ReportBatchItemFailures"],
}


def mapping_problems(parsed):
    problems, found = [], 0
    for block in blocks(parsed, "resource"):
        for name, spec in block.get("aws_lambda_event_source_mapping", {}).items():
            found += 1
            for key, wanted in EVENT_SOURCE_MAPPING.items():
                if spec.get(key) != wanted:
                    problems.append(
                        f"event source mapping {name}: {key} = {spec.get(key)!r}, "
                        f"exactly-once needs {wanted!r}"
                    )
    if not found:
        problems.append("no aws_lambda_event_source_mapping: Kinesis feeds no Lambda")
    return problems


def skips_without_reason():
    """checkov skips must say why: `#checkov:skip=CKV_X:<reason>`."""
    problems = []
    for path in sorted(TF.rglob("*.tf")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = re.search(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?", line)
            if m and len((m.group(2) or "").strip()) < 15:
                problems.append(f"{path.relative_to(ROOT)}:{n}: skip of {m.group(1)} without a reason")
    return problems


DASHBOARD = TF / "templates" / "dashboard.json.tftpl"
# The template's placeholder for each function's name.
FUNCTION_PLACEHOLDERS = {f"${{{name}_function}}": name for name in LAMBDAS}
# AWS's own metrics the dashboard may plot, by namespace.
AWS_METRICS = {
    "AWS/Lambda": {"Errors", "Throttles", "IteratorAge", "Duration", "Invocations"},
    "AWS/Kinesis": {"IteratorAgeMilliseconds"},
}


def metrics_emitted_by(lambda_name):
    pattern = re.compile(r'Metric::(?:count|millis|bytes)\(\s*"([A-Za-z]+)"')
    names = set()
    for path in rust_sources(lambda_name):
        names |= set(pattern.findall(strip_tests(path.read_text())))
    return names


def dimensions_emitted_by(lambda_name):
    """The dimension names of each `emf_line` call in the function's code."""
    call = re.compile(r"emf_line\(\s*&\[(.*?)\]\s*,", re.S)
    sets = []
    for path in rust_sources(lambda_name):
        for dims in call.findall(strip_tests(path.read_text())):
            sets.append(frozenset(re.findall(r'\(\s*"([A-Za-z]+)"\s*,', dims)))
    return sets


def dashboard_problems(parsed, emitted=None):
    """What the dashboard plots that nothing emits (`emitted`: per function, for tests)."""
    emitted = emitted or {name: metrics_emitted_by(name) for name in LAMBDAS}
    dimensions = {name: dimensions_emitted_by(name) for name in LAMBDAS}
    template = DASHBOARD.read_text()
    problems = []
    try:
        body = json.loads(template)
    except json.JSONDecodeError as e:
        return [f"{DASHBOARD.relative_to(ROOT)}: not JSON: {e}"]
    given = set()
    for block in blocks(parsed, "resource"):
        for dash in block.get("aws_cloudwatch_dashboard", {}).values():
            given |= set(re.findall(r"\b([a-z_]+)\s*=", str(dash.get("dashboard_body", ""))))
    for placeholder in sorted(set(re.findall(r"\$\{([a-z_]+)\}", template)) - given):
        problems.append(f"dashboard: ${{{placeholder}}} is not given by templatefile")
    shard_metrics = set()
    for block in blocks(parsed, "resource"):
        for stream in block.get("aws_kinesis_stream", {}).values():
            shard_metrics |= set(stream.get("shard_level_metrics", []) or [])
    plotted = 0
    for widget in body.get("widgets", []):
        title = widget.get("properties", {}).get("title", "?")
        for metric in widget.get("properties", {}).get("metrics", []):
            if isinstance(metric[0], dict):
                expression = metric[0].get("expression", "")
                for name in re.findall(r'MetricName=\\?"([A-Za-z]+)', expression):
                    plotted += 1
                    if name not in AWS_METRICS["AWS/Kinesis"] or name not in shard_metrics:
                        problems.append(f"dashboard {title!r}: {name} per shard is not enabled on the stream")
                continue
            namespace, name = metric[0], metric[1]
            dims = [m for m in metric[2:] if isinstance(m, str)]
            dims = dict(zip(dims[::2], dims[1::2]))
            plotted += 1
            if namespace == "Lakehouse":
                function = FUNCTION_PLACEHOLDERS.get(dims.get("Function", ""))
                if function is None:
                    problems.append(f"dashboard {title!r}: {name} has no Function of ours")
                elif name not in emitted.get(function, set()):
                    problems.append(f"dashboard {title!r}: the {function} function never emits {name}")
                elif frozenset(dims) not in dimensions[function]:
                    # CloudWatch matches a metric by its whole dimension set.
                    problems.append(
                        f"dashboard {title!r}: {name} plotted by {sorted(dims)}, "
                        f"the {function} function emits it by {[sorted(d) for d in dimensions[function]]}"
                    )
            elif name not in AWS_METRICS.get(namespace, set()):
                problems.append(f"dashboard {title!r}: {namespace} {name} is not a known AWS metric")
            elif namespace == "AWS/Lambda" and dims.get("FunctionName") not in FUNCTION_PLACEHOLDERS:
                problems.append(f"dashboard {title!r}: {name} of a function that is not ours")
    if plotted == 0:
        problems.append("dashboard: plots nothing")
    print(f"dashboard: {plotted} metrics checked")
    return problems


def declared(parsed):
    """Names the configuration declares: resources, data sources, variables, locals."""
    names = set()
    for kind, prefix in (("resource", ""), ("data", "data.")):
        for block in blocks(parsed, kind):
            for rtype, instances in block.items():
                names |= {f"{prefix}{rtype}.{name}" for name in instances}
    names |= {f"var.{n}" for b in blocks(parsed, "variable") for n in b}
    names |= {f"local.{n}" for b in blocks(parsed, "locals") for n in b}
    return names


REFERENCE = re.compile(r"\b((?:data\.)?aws_[a-z0-9_]+\.[a-z0-9_]+|var\.[a-z0-9_]+|local\.[a-z0-9_]+)")


def undeclared_references(parsed):
    """What `terraform validate` would catch first: a reference to nothing."""
    names, problems = declared(parsed), []
    for path in sorted(TF.glob("*.tf")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            for ref in REFERENCE.findall(code):
                if ref not in names:
                    problems.append(f"{path.relative_to(ROOT)}:{n}: {ref} is not declared")
    variables = {n for b in blocks(parsed, "variable") for n in b}
    for path in sorted((TF / "env").glob("*.tfvars")):
        with path.open() as f:
            for key in unquote(hcl2.load(f)):
                if not key.startswith("__") and key not in variables:
                    problems.append(f"{path.relative_to(ROOT)}: sets {key}, no such variable")
    return problems


def main():
    parsed, problems = parse_all()
    problems += skips_without_reason()
    if not problems:
        problems += undeclared_references(parsed)
        problems += mapping_problems(parsed)
    if not problems:
        problems += dashboard_problems(parsed)
        # The check itself must be able to fail: a metric no function emits.
        if not dashboard_problems(parsed, emitted={name: set() for name in LAMBDAS}):
            problems.append("dashboard check: passes a dashboard whose metrics nobody emits")
    if not problems:
        env = terraform_env(parsed)
        granted = terraform_actions(parsed)
        for name in LAMBDAS:
            read, set_ = env_read_by(name), env.get(name, set())
            for missing in sorted(read - set_):
                problems.append(f"{name}: code reads {missing}, Terraform does not set it")
            for extra in sorted(set_ - read):
                problems.append(f"{name}: Terraform sets {extra}, the code never reads it")
            needed, has = actions_called_by(name), granted.get(name, set())
            for missing in sorted(needed - has):
                problems.append(f"{name}: code needs {missing}, its IAM policy does not grant it")
            for extra in sorted(has - needed):
                problems.append(f"{name}: IAM grants {extra}, nothing in the code needs it")
            print(f"{name}: {len(read)} environment variables and {len(needed)} IAM actions checked")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    print(f"terraform: {len(parsed)} files parsed, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
