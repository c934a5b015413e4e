"""Generate chalicelib/types/protobuf_fields.json: the protobuf field table of every type Skiff decodes.

Why this exists: kubectl and client-go send request bodies as Kubernetes protobuf
(`application/vnd.kubernetes.protobuf`) for their typed clients, and `chalicelib/api/protobuf.py` turns
those bodies back into the JSON shape the rest of the server handles. Protobuf is not self-describing,
so the decoder needs, for every message, the field number -> (JSON name, wire type, Go shape) mapping
that Kubernetes declares in the struct tags of its `types.go` files, e.g.

    Replicas *int32 `json:"replicas,omitempty" protobuf:"varint,1,opt,name=replicas"`

The facts were transcribed by hand, at development time, from those struct tags into small text files
kept outside the repository (one line per field: `<number> <json tag> <Go type>`, one `@Struct` line per
struct, a file per API package). This script turns them into the committed JSON table and cross-checks
every field against the OpenAPI schemas in `chalicelib/types/schemas.json` (names, int32/int64, arrays,
maps, references), so a slip in the transcription fails here instead of mis-decoding a request. Nothing
here runs in the server.

    .venv/bin/python tools/gen_protobuf_fields.py /path/to/facts-dir [--kubectl /usr/bin/kubectl]
    .venv/bin/python tools/gen_protobuf_fields.py --kubectl /usr/bin/kubectl   # check the committed table

`--kubectl` adds a second, independent check: a kubectl binary carries the gzipped protobuf file
descriptors of every API type it was built with (the gogo-protobuf registration in each
generated.pb.go). They are read straight out of the binary and every field of the table is compared
with them (number, name, scalar type or message, repeated, map); fields that binary knows and the table
lacks are reported too. That proves the table against what that kubectl actually puts on the wire.

Table format, per message (`k8s.io.api.core.v1.Pod`), per field number (as a string):
`name` (JSON name), `type` (`string`, `int32`, `int64`, `bool`, `bytes`, `double` or a message name),
`repeated`, and when they apply: `map` ([keyType, valueType]), `omitempty` (the JSON tag has it),
`pointer` (Go pointer or nullable: JSON shows it whenever it was sent), `inline` (Go embedded struct
whose fields JSON flattens into the parent).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "chalicelib" / "types" / "protobuf_fields.json"
SCHEMAS = ROOT / "chalicelib" / "types" / "schemas.json"

CORE = "k8s.io.api.core.v1"
META = "k8s.io.apimachinery.pkg.apis.meta.v1"
QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"

# Facts file -> proto package of the structs it describes.
PACKAGES = {
    "core": CORE,
    "meta": META,
    "apps": "k8s.io.api.apps.v1",
    "coordination": "k8s.io.api.coordination.v1",
    "autoscaling": "k8s.io.api.autoscaling.v1",
}
# Go import alias -> proto package, as the types.go files import them.
ALIASES = {"metav1": META, "v1": CORE}

# Types with a hand-written protobuf encoding in apimachinery (decoded specially by protobuf.py).
SPECIAL: dict[str, dict[str, dict[str, Any]]] = {
    QUANTITY: {"1": {"name": "string", "type": "string", "repeated": False}},
    INT_OR_STRING: {
        "1": {"name": "type", "type": "int64", "repeated": False},
        "2": {"name": "intVal", "type": "int32", "repeated": False},
        "3": {"name": "strVal", "type": "string", "repeated": False},
    },
    f"{META}.Time": {
        "1": {"name": "seconds", "type": "int64", "repeated": False},
        "2": {"name": "nanos", "type": "int32", "repeated": False},
    },
    f"{META}.MicroTime": {
        "1": {"name": "seconds", "type": "int64", "repeated": False},
        "2": {"name": "nanos", "type": "int32", "repeated": False},
    },
    f"{META}.FieldsV1": {"1": {"name": "Raw", "type": "bytes", "repeated": False}},
    RAW_EXTENSION: {"1": {"name": "raw", "type": "bytes", "repeated": False}},
}
QUALIFIED = {
    "resource.Quantity": QUANTITY,
    "intstr.IntOrString": INT_OR_STRING,
    "runtime.RawExtension": RAW_EXTENSION,
    "metav1.Time": f"{META}.Time",
    "metav1.MicroTime": f"{META}.MicroTime",
}
SCALARS = {"string": "string", "bool": "bool", "int32": "int32", "int64": "int64", "float64": "double"}
# Named Go types that are not strings.
NAMED = {"ResourceList": "map[ResourceName]resource.Quantity"}

Field = dict[str, Any]

# Fields the OpenAPI schemas know but this table does not decode: alpha fields of Kubernetes releases
# newer than the kubectl the table was verified against (1.32), whose protobuf numbers could not be
# confirmed from a source. A request carrying them still decodes; those fields are skipped, as an
# older kube-apiserver would skip them.
NOT_COVERED = {
    "k8s.io.api.core.v1.ClusterTrustBundleProjection.user",
    "k8s.io.api.core.v1.ConfigMapVolumeSource.defaultUser",
    "k8s.io.api.core.v1.ContainerStatus.stopSignal",
    "k8s.io.api.core.v1.DownwardAPIVolumeFile.user",
    "k8s.io.api.core.v1.DownwardAPIVolumeSource.defaultUser",
    "k8s.io.api.core.v1.EmptyDirVolumeSource.mode",
    "k8s.io.api.core.v1.EnvVarSource.fileKeyRef",
    "k8s.io.api.core.v1.GRPCAction.mode",
    "k8s.io.api.core.v1.HTTPGetAction.protocol",
    "k8s.io.api.core.v1.KeyToPath.user",
    "k8s.io.api.core.v1.Lifecycle.stopSignal",
    "k8s.io.api.core.v1.NodeSpec.podPreemptionPolicy",
    "k8s.io.api.core.v1.NodeStatus.declaredFeatures",
    "k8s.io.api.core.v1.NodeSystemInfo.runningInUserNamespace",
    "k8s.io.api.core.v1.NodeSystemInfo.swap",
    "k8s.io.api.core.v1.PodCondition.observedGeneration",
    "k8s.io.api.core.v1.PodSpec.evictionResponders",
    "k8s.io.api.core.v1.PodSpec.schedulingGroup",
    "k8s.io.api.core.v1.PodStatus.allocatedResources",
    "k8s.io.api.core.v1.PodStatus.extendedResourceClaimStatus",
    "k8s.io.api.core.v1.PodStatus.nodeAllocatableResourceClaimStatuses",
    "k8s.io.api.core.v1.PodStatus.observedGeneration",
    "k8s.io.api.core.v1.PodStatus.resources",
    "k8s.io.api.core.v1.PodStatus.volumeHealth",
    "k8s.io.api.core.v1.ProjectedVolumeSource.defaultUser",
    "k8s.io.api.core.v1.ResourceHealth.message",
    "k8s.io.api.core.v1.SecretVolumeSource.defaultUser",
    "k8s.io.api.core.v1.ServiceAccountTokenProjection.user",
    "k8s.io.api.core.v1.VolumeMount.bindMountOptions",
    "k8s.io.api.core.v1.VolumeMountStatus.volumeStatus",
    "k8s.io.api.core.v1.VolumeProjection.podCertificate",
    "k8s.io.apimachinery.pkg.apis.meta.v1.ListMeta.shardInfo",
}
# Fields Kubernetes has that the OpenAPI schemas (from the Python client) do not list.
NOT_IN_OPENAPI = {"k8s.io.api.apps.v1.DeploymentSpec.podReplacementPolicy"}


def parse_facts(path: Path) -> dict[str, list[tuple[int, str, str]]]:
    """`@Struct` headers followed by `<number> <json tag> <Go type>` lines."""
    structs: dict[str, list[tuple[int, str, str]]] = {}
    current: list[tuple[int, str, str]] | None = None
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            name = line[1:]
            if name in structs:
                sys.exit(f"{path}:{lineno}: struct {name} listed twice")
            current = structs[name] = []
            continue
        parts = line.split()
        if current is None or len(parts) != 3 or not parts[0].isdigit():
            sys.exit(f"{path}:{lineno}: cannot parse {raw!r}")
        current.append((int(parts[0]), parts[1], parts[2]))
    return structs


def resolve(go_type: str, package: str, structs: dict[str, set[str]]) -> tuple[str, list[str] | None, bool]:
    """Go type -> (proto type, map [key, value] or None, repeated)."""
    go_type = NAMED.get(go_type, go_type)
    if go_type == "[]byte":
        return "bytes", None, False
    if go_type.startswith("[]"):
        inner, _, _ = resolve(go_type[2:], package, structs)
        return inner, None, True
    match = re.fullmatch(r"map\[([\w.]+)\](.+)", go_type)
    if match:
        key, _, _ = resolve(match.group(1), package, structs)
        value, _, _ = resolve(match.group(2), package, structs)
        return "map", [key, value], False
    if go_type in SCALARS:
        return SCALARS[go_type], None, False
    if go_type in QUALIFIED:
        return QUALIFIED[go_type], None, False
    if "." in go_type:
        alias, name = go_type.split(".", 1)
        if alias == "types":  # types.UID
            return "string", None, False
        target = ALIASES.get(alias)
        if target is None:
            sys.exit(f"unknown Go package alias in {go_type}")
        if name in structs.get(target, set()):
            return f"{target}.{name}", None, False
        if name in ("Time", "MicroTime"):
            return f"{META}.{name}", None, False
        return "string", None, False  # a named string type of another package (v1.ConditionStatus)
    if go_type in structs.get(package, set()):
        return f"{package}.{go_type}", None, False
    if package == META and go_type in ("Time", "MicroTime", "FieldsV1"):
        return f"{META}.{go_type}", None, False
    # Every other named type of these packages is a string enum (Protocol, PodPhase, ...);
    # the OpenAPI cross-check below catches any that is not.
    return "string", None, False


def build(facts_dir: Path) -> dict[str, dict[str, Field]]:
    parsed = {PACKAGES[p.stem]: parse_facts(p) for p in sorted(facts_dir.glob("*.txt"))}
    names = {package: set(structs) for package, structs in parsed.items()}
    table: dict[str, dict[str, Field]] = {}
    for package, structs in parsed.items():
        for struct, fields in structs.items():
            message: dict[str, Field] = {}
            for number, tag, go_type in fields:
                json_name, _, options = tag.partition(",")
                pointer = go_type.startswith("*")
                proto_type, map_types, repeated = resolve(go_type.lstrip("*"), package, names)
                field: Field = {"repeated": repeated}
                if map_types:
                    field["type"] = map_types[1]
                    field["map"] = map_types
                else:
                    field["type"] = proto_type
                if options == "inline" and not json_name:
                    field["inline"] = True
                    json_name = go_type.lstrip("*")
                if "omitempty" in options.split(","):
                    field["omitempty"] = True
                if pointer:
                    field["pointer"] = True
                field = {"name": json_name, **field}
                if str(number) in message:
                    sys.exit(f"{package}.{struct}: field number {number} used twice")
                message[str(number)] = field
            table[f"{package}.{struct}"] = message
    table.update(SPECIAL)
    return dict(sorted(table.items()))


def openapi_name(message: str) -> str:
    """`k8s.io.api.core.v1.Pod` (protobuf package) -> `io.k8s.api.core.v1.Pod` (OpenAPI)."""
    return "io.k8s." + message.removeprefix("k8s.io.")


def schema_type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return "ref:" + prop["$ref"].rsplit("/", 1)[-1]
    kind = prop.get("type")
    if kind == "integer":
        return prop.get("format", "int64")
    if kind == "number":
        return "double"
    if kind == "boolean":
        return "bool"
    if kind == "string":
        return "bytes" if prop.get("format") == "byte" else "string"
    if kind == "array":
        return "array:" + schema_type(prop["items"])
    if kind == "object" and "additionalProperties" in prop:
        return "map:" + schema_type(prop["additionalProperties"])
    return f"?{kind}"


def table_type(field: Field) -> str:
    kind = field["type"]
    if kind not in ("string", "int32", "int64", "bool", "bytes", "double"):
        kind = "ref:" + openapi_name(kind)
    if field.get("map"):
        return "map:" + kind
    if field["repeated"]:
        return "array:" + kind
    return kind


def json_properties(table: dict[str, dict[str, Field]], message: str) -> dict[str, Field]:
    props: dict[str, Field] = {}
    for field in table[message].values():
        if field.get("inline"):
            props.update(json_properties(table, field["type"]))
        else:
            props[field["name"]] = field
    return props


def check(table: dict[str, dict[str, Field]]) -> list[str]:
    """Compare every message that has an OpenAPI schema; return the differences."""
    schemas = json.loads(SCHEMAS.read_text())
    problems = []
    for message in table:
        if message in SPECIAL:
            continue
        schema = schemas.get(openapi_name(message))
        if schema is None:
            continue  # inlined-only helper structs (VolumeSource, ProbeHandler, ...)
        wanted = schema.get("properties", {})
        have = json_properties(table, message)
        for name in sorted(set(wanted) - set(have) - {"apiVersion", "kind"}):  # TypeMeta is the envelope's
            if f"{message}.{name}" not in NOT_COVERED:
                problems.append(f"{message}: JSON field {name} has no protobuf number")
        for name in sorted(set(have) - set(wanted)):
            if f"{message}.{name}" not in NOT_IN_OPENAPI:
                problems.append(f"{message}: protobuf field {name} is not in the OpenAPI schema")
        for name in sorted(set(have) & set(wanted)):
            expected, got = schema_type(wanted[name]), table_type(have[name])
            if expected != got:
                problems.append(f"{message}.{name}: OpenAPI says {expected}, table says {got}")
    return problems


# FieldDescriptorProto.type -> table type (the others do not occur in the Kubernetes API).
DESCRIPTOR_TYPES = {1: "double", 3: "int64", 5: "int32", 8: "bool", 9: "string", 11: "message", 12: "bytes"}


def kubectl_descriptors(binary: Path) -> dict[str, dict[str, Any]]:
    """message name -> {"map_entry": bool, "fields": {number: (name, repeated, type)}} from a Go binary."""
    sys.path.insert(0, str(ROOT))
    from chalicelib.api.protobuf import iter_fields  # the decoder's own wire reader

    def text(value: Any) -> str:
        return bytes(value).decode()

    def message(data: bytes, prefix: str, out: dict[str, dict[str, Any]]) -> None:
        name, fields, nested, map_entry = "", {}, [], False
        for number, _, value in iter_fields(data):
            if number == 1:
                name = text(value)
            elif number == 2:
                field = {n: v for n, _, v in iter_fields(bytes(value))}
                type_number = int(field[5])
                kind = DESCRIPTOR_TYPES.get(type_number, f"type{type_number}")
                if kind == "message":
                    kind = text(field[6]).lstrip(".")
                fields[str(field[3])] = (text(field[1]), field.get(4) == 3, kind)
            elif number == 3:
                nested.append(bytes(value))
            elif number == 7:
                map_entry = any(n == 7 and v for n, _, v in iter_fields(bytes(value)))
        full = f"{prefix}.{name}"
        out[full] = {"map_entry": map_entry, "fields": fields}
        for data in nested:
            message(data, full, out)

    blob = binary.read_bytes()
    out: dict[str, dict[str, Any]] = {}
    for match in re.finditer(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00", blob):  # gzip, as Go writes it
        try:
            descriptor = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(blob[match.start() :][:4_000_000])
            parts = list(iter_fields(descriptor))
        except Exception:  # noqa: BLE001 - most gzip-looking bytes in a binary are not descriptors
            continue
        package = next((text(v) for n, _, v in parts if n == 2 and isinstance(v, bytes)), "")
        if package.startswith("k8s.io."):
            for number, _, value in parts:
                if number == 4:
                    message(bytes(value), package, out)
    return out


def check_kubectl(table: dict[str, dict[str, Field]], binary: Path) -> list[str]:
    descriptors = kubectl_descriptors(binary)
    if not descriptors:
        return [f"{binary}: no Kubernetes protobuf descriptors found"]
    problems = []
    for message, fields in table.items():
        known = descriptors.get(message)
        if known is None:
            print(f"note: {message} is newer than {binary}")
            continue
        for number, field in fields.items():
            if number not in known["fields"]:
                print(f"note: {message}.{field['name']} ({number}) is newer than {binary}")
                continue
            name, repeated, kind = known["fields"][number]
            entry = descriptors.get(kind, {})
            if entry.get("map_entry"):
                key, value = entry["fields"]["1"][2], entry["fields"]["2"][2]
                ours = (field.get("map"), field["repeated"] or bool(field.get("map")))
                theirs = ([key, value], repeated)
            else:
                ours, theirs = (field["type"], field["repeated"]), (kind, repeated)
            if ours != theirs:
                problems.append(f"{message}.{field['name']} ({number}): table {ours}, kubectl {theirs}")
            if not field.get("inline") and name != field["name"]:
                problems.append(f"{message} ({number}): table names it {field['name']}, kubectl {name}")
        for number, (name, _, _) in known["fields"].items():
            if number not in fields:
                problems.append(f"{message}.{name} ({number}): in kubectl, missing from the table")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("facts", type=Path, nargs="?", help="directory of the transcribed *.txt facts files")
    parser.add_argument("--kubectl", type=Path, help="also check against this kubectl's descriptors")
    parser.add_argument("--allow-differences", action="store_true", help="write the table anyway")
    options = parser.parse_args()
    table = build(options.facts) if options.facts else json.loads(OUTPUT.read_text())
    problems = check(table)
    if options.kubectl:
        problems += check_kubectl(table, options.kubectl)
    for problem in problems:
        print(problem)
    if not options.facts:  # checking the committed table only
        sys.exit(1 if problems else 0)
    if problems and not options.allow_differences:
        sys.exit(f"{len(problems)} differences; table not written")
    # Messages sorted by name; fields in Go declaration order, which is the order JSON prints them in.
    OUTPUT.write_text(json.dumps(table, separators=(",", ":")) + "\n")
    print(f"wrote {len(table)} messages to {OUTPUT.relative_to(ROOT)}; {len(problems)} differences")


if __name__ == "__main__":
    main()
