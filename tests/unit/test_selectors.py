"""Label and field selectors as apimachinery parses and matches them (chalicelib/api/selectors.py
and label_selector.py)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import errors
from chalicelib.api.selectors import (
    LabelSelector,
    Requirement,
    format_label_selector,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector,
)

LABELS = {"app": "web", "tier": "front", "env": "prod", "example.com/team": "a", "n": "10", "empty": ""}

KEY_REGEX_ERROR = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                   "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
                   "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
VALUE_REGEX_ERROR = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
                     "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
                     "'my_value',  or '12345', regex used for validation is "
                     "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


def bad_request(call: Any, *args: Any) -> str:
    with pytest.raises(errors.BadRequest) as caught:
        call(*args)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    return caught.value.message


# ---- label selector strings ---------------------------------------------------------------------

@pytest.mark.parametrize("text,matches", [
    ("", True),
    ("   ", True),
    ("app=web", True),
    ("app==web", True),
    ("app=api", False),
    ("app!=api", True),
    ("app!=web", False),
    ("missing!=x", True),                       # != matches when the key is absent
    ("missing=x", False),
    ("app in (web,api)", True),
    ("app in (api)", False),
    ("missing in (x)", False),
    ("app notin (api,db)", True),
    ("app notin (web)", False),
    ("missing notin (x)", True),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("app=web,tier=front", True),
    ("app=web,tier=back", False),
    ("  app = web ,  tier in ( front , back ) , !missing  ", True),
    ("example.com/team=a", True),
    ("empty=", True),                           # an empty value is a value
    ("empty in ()", True),                      # "()" is the set holding ""
    ("app in (,web)", True),
    ("n>9", True),
    ("n>10", False),
    ("n<11", True),
    ("app>1", False),                           # a label that is not an integer never compares
    ("missing<1", False),
    ("in=x", False),                            # "in" and "notin" may be keys ...
    ("app in (in,notin,web)", True),            # ... and values
])
def test_label_selector_matching(text: str, matches: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is matches


@pytest.mark.parametrize("labels", [None, {}])
def test_label_selector_on_objects_without_labels(labels: dict[str, str] | None) -> None:
    assert parse_label_selector("").matches(labels)
    assert parse_label_selector("!app,x notin (y),z!=1").matches(labels)
    assert not parse_label_selector("app").matches(labels)


@pytest.mark.parametrize("text,requirements", [
    ("b=1,a", [Requirement("a", "exists"), Requirement("b", "=", ("1",))]),
    ("x in (c,a,b,a)", [Requirement("x", "in", ("a", "b", "c"))]),
    ("x notin (b,,a)", [Requirement("x", "notin", ("", "a", "b"))]),
    ("!x,y==2,z!=3", [Requirement("x", "!"), Requirement("y", "==", ("2",)), Requirement("z", "!=", ("3",))]),
    ("x>1,y<0", [Requirement("x", "gt", ("1",)), Requirement("y", "lt", ("0",))]),
])
def test_label_selector_parse_tree(text: str, requirements: list[Requirement]) -> None:
    assert list(parse_label_selector(text).requirements) == requirements


@pytest.mark.parametrize("text,canonical", [
    ("", ""),
    ("tier=front, app=web", "app=web,tier=front"),
    ("a==b,c!=d", "a==b,c!=d"),
    ("x in (c, a),!y,z", "x in (a,c),!y,z"),
    ("x notin ()", "x notin ()"),
    ("n>5", "n>5"),
])
def test_label_selector_string_form(text: str, canonical: str) -> None:
    assert str(parse_label_selector(text)) == canonical


@pytest.mark.parametrize("text,message", [
    ("app web", "unable to parse requirement: found 'web', expected: in, notin, =, ==, !=, gt, lt"),
    ("app=web tier", "found 'tier', expected: ',' or 'end of string'"),
    (",app", "found ',', expected: !, identifier, or 'end of string'"),
    ("app,", "found '', expected: identifier after ','"),
    ("app=web,,x", "found ',', expected: identifier after ','"),
    ("!!app", "unable to parse requirement: found '!', expected: identifier"),
    ("!app=web", "found '=', expected: ',' or 'end of string'"),
    ("app in web", "unable to parse requirement: found 'web' expected: '('"),
    ("app in (web", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("app in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
    ("app in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
    ("app=(", "unable to parse requirement: found '(', expected: identifier"),
    ("app<=1", "unable to parse requirement: found '=', expected: identifier"),
    ("=web", "found '=', expected: !, identifier, or 'end of string'"),
    ("app=web)", "found ')', expected: ',' or 'end of string'"),
    ("-app=x", f'unable to parse requirement: <nil>: Invalid value: "-app": {KEY_REGEX_ERROR}'),
    ("a/b/c", 'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must consist'),
    ("/a", 'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty'),
    ("Example.com/a", "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric"),
    ("example.com/", f'<nil>: Invalid value: "example.com/": name part must be non-empty; {KEY_REGEX_ERROR}'),
    ("a" * 64, "name part must be no more than 63 characters"),
    ("app=a/b", f'unable to parse requirement: values[0][app]: Invalid value: "a/b": {VALUE_REGEX_ERROR}'),
    ("app in (ok,-bad)", 'unable to parse requirement: values[0][app]: Invalid value: "-bad": '),
    ("app=" + "v" * 64,
     'values[0][app]: Invalid value: "' + "v" * 64 + '": must be no more than 63 characters'),
    ("n>x", 'unable to parse requirement: values[0]: Invalid value: "x": for \'Gt\', \'Lt\' operators, '
            "the value must be an integer"),
    ("n>99999999999999999999", "the value must be an integer"),
])
def test_label_selector_errors_match_upstream(text: str, message: str) -> None:
    assert message in bad_request(parse_label_selector, text)


def test_label_selector_exact_match_and_emptiness() -> None:
    selector = parse_label_selector("app=web,tier in (front),env in (a,b),x!=y")
    assert [selector.requires_exact_match(k) for k in ("app", "tier", "env", "x", "nope")] == [
        "web", "front", None, None, None]
    assert parse_label_selector("").is_empty
    assert not selector.is_empty


# ---- metav1.LabelSelector -------------------------------------------------------------------------

@pytest.mark.parametrize("selector,labels,matches", [
    ({}, {}, True),                                         # empty selector: everything
    ({"matchLabels": {}, "matchExpressions": []}, {"a": "b"}, True),
    ({"matchLabels": None}, {"a": "b"}, True),
    (None, {"a": "b"}, False),                              # no selector: nothing
    (None, {}, False),
    ({"matchLabels": {"app": "web"}}, LABELS, True),
    ({"matchLabels": {"app": "web", "tier": "back"}}, LABELS, False),
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}, LABELS, True),
    ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, LABELS, False),
    ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, LABELS, True),
    ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, LABELS, False),
    ({"matchExpressions": [{"key": "gone", "operator": "DoesNotExist", "values": []}]}, LABELS, True),
    ({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}, LABELS, False),
])
def test_selector_from_metav1_label_selector(selector: dict[str, Any] | None, labels: dict[str, str],
                                             matches: bool) -> None:
    assert selector_from_label_selector(selector).matches(labels) is matches


@pytest.mark.parametrize("selector,text", [
    ({"matchLabels": {"tier": "front", "app": "web"}}, "app=web,tier=front"),
    ({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
     "app=web,tier in (a,b)"),
    ({"matchExpressions": [{"key": "z", "operator": "Exists"}, {"key": "a", "operator": "DoesNotExist"},
                           {"key": "m", "operator": "NotIn", "values": ["x"]}]}, "!a,m notin (x),z"),
    ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "app", "operator": "Exists"}]},
     "app=web,app"),
    ({}, ""),
    (None, ""),
])
def test_format_label_selector_like_scale_status(selector: dict[str, Any] | None, text: str) -> None:
    assert format_label_selector(selector) == text


@pytest.mark.parametrize("selector,message", [
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
     "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn"}]},
     "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist'),
    ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
     '"Gt" is not a valid label selector operator'),
    ({"matchExpressions": [{"key": "a"}]}, '"" is not a valid label selector operator'),
    ({"matchLabels": {"bad key": "v"}}, f'key: Invalid value: "bad key": {KEY_REGEX_ERROR}'),
    ({"matchLabels": {"k": "bad value"}}, f'values[0][k]: Invalid value: "bad value": {VALUE_REGEX_ERROR}'),
    ({"matchLabels": {"-k": "-v"}}, '[key: Invalid value: "-k": '),
    ({"matchExpressions": ["app"]}, "invalid label selector requirement"),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]},
     "invalid label selector requirement"),
    ({"matchLabels": ["app"]}, "matchLabels must be an object"),
    (["app"], "a label selector must be an object"),
])
def test_invalid_metav1_label_selector(selector: Any, message: str) -> None:
    assert message in bad_request(selector_from_label_selector, selector)


def test_nothing_selector() -> None:
    nothing = LabelSelector.nothing()
    assert not nothing.matches({}) and not nothing.is_empty and str(nothing) == ""


# ---- field selectors ------------------------------------------------------------------------------

POD = {
    "metadata": {"name": "web-1", "namespace": "prod"},
    "spec": {"nodeName": "node-a", "restartPolicy": "Always", "schedulerName": "default-scheduler",
             "serviceAccountName": "default", "hostNetwork": True},
    "status": {"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.7"}],
               "nominatedNodeName": "node-b"},
}
NODE = {"metadata": {"name": "node-a"}, "spec": {"unschedulable": True}}
NAMESPACE = {"metadata": {"name": "prod"}, "status": {"phase": "Active"}}
EVENT = {
    "metadata": {"name": "e1", "namespace": "prod"},
    "involvedObject": {"kind": "Pod", "namespace": "prod", "name": "web-1", "uid": "u-1", "apiVersion": "v1",
                       "resourceVersion": "42", "fieldPath": "spec.containers{app}"},
    "reason": "Started", "type": "Normal", "source": {"component": "kubelet"}, "reportingComponent": "rc",
}
SERVICE = {"metadata": {"name": "svc", "namespace": "prod"},
           "spec": {"clusterIP": "10.96.0.1", "type": "ClusterIP"}}
CONFIGMAP = {"metadata": {"name": "cm", "namespace": "prod"}, "data": {"a": "b"}}


@pytest.mark.parametrize("kind,obj,text,matches", [
    ("Pod", POD, "", True),
    ("Pod", POD, "metadata.name=web-1", True),
    ("Pod", POD, "metadata.name==web-1", True),
    ("Pod", POD, "metadata.name!=web-1", False),
    ("Pod", POD, "metadata.namespace=prod,metadata.name=web-1", True),
    ("Pod", POD, "metadata.namespace=prod,metadata.name=web-2", False),
    ("Pod", POD, "spec.nodeName=node-a", True),
    ("Pod", POD, "spec.host=node-a", True),               # the old v1 name for spec.nodeName
    ("Pod", POD, "spec.restartPolicy=Always,spec.schedulerName=default-scheduler", True),
    ("Pod", POD, "spec.serviceAccountName=default", True),
    ("Pod", POD, "spec.hostNetwork=true", True),
    ("Pod", {"metadata": {}}, "spec.hostNetwork=false", True),  # unset bools select as "false"
    ("Pod", POD, "status.phase!=Pending", True),
    ("Pod", POD, "status.podIP=10.0.0.7", True),          # the first of status.podIPs, as upstream
    ("Pod", {"status": {"podIP": "10.0.0.9"}}, "status.podIP=10.0.0.9", True),
    ("Pod", POD, "status.nominatedNodeName=node-b", True),
    ("Pod", POD, "status.podIPs=", True),                 # accepted, never a selectable value upstream
    ("Pod", {"metadata": {"name": "x"}}, "spec.nodeName=", True),      # missing fields compare as ""
    ("Pod", {"metadata": {"name": "x"}}, "spec.nodeName!=", False),
    ("Pod", POD, "metadata.name=web-1,,status.phase=Running", True),   # empty terms are skipped
    ("Node", NODE, "spec.unschedulable=true", True),
    ("Node", NODE, "metadata.name=node-a,spec.unschedulable!=false", True),
    ("Namespace", NAMESPACE, "status.phase=Active,metadata.name=prod", True),
    ("Event", EVENT, "involvedObject.kind=Pod,involvedObject.name=web-1,involvedObject.namespace=prod", True),
    ("Event", EVENT, "involvedObject.uid=u-1,involvedObject.apiVersion=v1,involvedObject.resourceVersion=42",
     True),
    ("Event", EVENT, "involvedObject.fieldPath=spec.containers{app}", True),
    ("Event", EVENT, "reason=Started,type=Normal,source=kubelet,reportingComponent=rc", True),
    ("Event", {"reportingComponent": "ctrl"}, "source=ctrl", True),    # source falls back upstream
    ("Event", EVENT, "type=Warning", False),
    ("Service", SERVICE, "spec.clusterIP=10.96.0.1,spec.type=ClusterIP", True),
    ("ConfigMap", CONFIGMAP, "metadata.name=cm,metadata.namespace=prod", True),
    ("Deployment", CONFIGMAP, "metadata.namespace!=prod", False),
    ("Pod", {"metadata": {"name": "a,b=c\\d"}}, r"metadata.name=a\,b\=c\\d", True),  # escaped values
])
def test_field_selector_matching(kind: str, obj: dict[str, Any], text: str, matches: bool) -> None:
    assert parse_field_selector(text, kind).matches(obj) is matches


@pytest.mark.parametrize("kind,text,message", [
    ("Pod", "spec.containers=x", "field label not supported: spec.containers"),
    ("Pod", "metadata.labels=x", "field label not supported: metadata.labels"),
    ("Pod", "metadata.name = web", "field label not supported: metadata.name "),  # no trimming upstream
    ("Node", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("Node", "spec.nodeName=x", "field label not supported: spec.nodeName"),
    ("Namespace", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("Event", "message=x", "field label not supported: message"),
    ("Service", "spec.ports=x", "field label not supported: spec.ports"),
    ("ConfigMap", "data.a=b",
     '"data.a" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("Deployment", "status.replicas=1",
     '"status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("Lease", "spec.host=x",
     '"spec.host" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("Pod", "metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
    ("Pod", "a=b, ", "invalid selector: 'a=b, '; can't understand ' '"),
    ("Pod", "metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
    ("Pod", "metadata.name=a\\x", "invalid field selector: invalid escape sequence: \\x"),
    ("Pod", "metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
])
def test_field_selector_errors_match_upstream(kind: str, text: str, message: str) -> None:
    assert bad_request(parse_field_selector, text, kind) == message


@pytest.mark.parametrize("text,field,value", [
    ("metadata.name=web-1", "metadata.name", "web-1"),
    ("metadata.name==web-1", "metadata.name", "web-1"),
    ("metadata.name!=web-1", "metadata.name", None),
    ("status.phase=Running,metadata.namespace=prod", "metadata.namespace", "prod"),
    ("spec.host=node-a", "spec.nodeName", "node-a"),
    ("metadata.name=a\\,b", "metadata.name", "a,b"),
    ("", "metadata.name", None),
    ("metadata.name=web-1", "metadata.namespace", None),
])
def test_field_selector_equals(text: str, field: str, value: str | None) -> None:
    assert parse_field_selector(text, "Pod").equals(field) == value


@pytest.mark.parametrize("text,canonical", [
    ("status.phase=Running,metadata.name==web-1", "metadata.name=web-1,status.phase=Running"),
    ("metadata.name!=a\\,b", "metadata.name!=a\\,b"),
    ("", ""),
])
def test_field_selector_string_form(text: str, canonical: str) -> None:
    selector = parse_field_selector(text, "Pod")
    assert str(selector) == canonical and selector.is_empty is (text == "")
