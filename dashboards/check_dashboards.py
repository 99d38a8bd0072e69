#!/usr/bin/env python3
"""Validates streamwatch's Grafana dashboards against Grafana's own dashboard model.

Uses `grafana-foundation-sdk` (Grafana Labs' generated types for dashboards, panels and the
Prometheus query) and PyYAML; `make test-deps` installs both into target/pytools. Run as
`check_dashboards.py DASHBOARD.json... [--provisioning DIR]`; exit 0 when all is well, 1 with one
line per problem otherwise. tests/e2e/dashboards.rs runs it on the real files and on broken copies.

Why a round trip: the SDK's `from_json` silently drops keys it does not know, so a misspelt key
(`gridpos`, `legendFormt`) would still "parse". Decoding into the typed model and encoding again
must give back every key and value of the file; whatever is lost is reported.
"""

import argparse
import json
import sys
from pathlib import Path

import yaml
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

# Annotation keys that Grafana reads but the generic AnnotationQuery type does not declare: the
# options of Prometheus annotations, and `builtIn`, which marks Grafana's own annotation list.
ANNOTATION_EXTRA_KEYS = {"step", "titleFormat", "textFormat", "tagKeys", "useValueForTime", "builtIn"}
# Variable keys of the Prometheus query editor that VariableModel does not declare.
VARIABLE_EXTRA_KEYS = {"definition"}


def lost_keys(original, roundtrip, path=""):
    """Paths in `original` that are missing from, or differ in, `roundtrip`."""
    problems = []
    if isinstance(original, dict):
        if not isinstance(roundtrip, dict):
            return [f"{path}: became {type(roundtrip).__name__}"]
        for key, value in original.items():
            here = f"{path}.{key}" if path else key
            if key not in roundtrip:
                problems.append(f"{here}: not part of Grafana's model (misspelt or unknown key?)")
            else:
                problems.extend(lost_keys(value, roundtrip[key], here))
    elif isinstance(original, list):
        if not isinstance(roundtrip, list) or len(roundtrip) != len(original):
            return [f"{path}: list changed in the model"]
        for i, (a, b) in enumerate(zip(original, roundtrip)):
            problems.extend(lost_keys(a, b, f"{path}[{i}]"))
    elif original != roundtrip:
        problems.append(f"{path}: {original!r} became {roundtrip!r}")
    return problems


def check_dashboard(path, datasource_uids):
    problems = []
    data = json.loads(Path(path).read_text())
    model = dm.Dashboard.from_json(data)
    roundtrip = json.loads(JSONEncoder().encode(model))

    # Keys the model does not type but Grafana reads are compared by hand, then ignored.
    original = json.loads(json.dumps(data))
    for anno in original.get("annotations", {}).get("list", []):
        for key in ANNOTATION_EXTRA_KEYS & anno.keys():
            del anno[key]
    for var in original.get("templating", {}).get("list", []):
        for key in VARIABLE_EXTRA_KEYS & var.keys():
            del var[key]
    problems += lost_keys(original, roundtrip)

    if not model.uid or not model.title:
        problems.append("dashboard needs a uid and a title")
    ids = [p.id_val for p in model.panels or []]
    if None in ids or len(set(ids)) != len(ids):
        problems.append(f"panel ids must be present and unique: {ids}")
    for panel in model.panels or []:
        where = f"panel {panel.id_val} ({panel.title!r})"
        if isinstance(panel, dm.RowPanel):
            continue
        if cogruntime.panelcfg_config(panel.type_val) is None:
            problems.append(f"{where}: unknown panel type {panel.type_val!r}")
        pos = panel.grid_pos
        if pos is None or pos.w <= 0 or pos.h <= 0 or pos.x < 0 or pos.x + pos.w > 24:
            problems.append(f"{where}: gridPos must lie within the 24 columns")
        if panel.datasource is None or panel.datasource.uid not in datasource_uids:
            problems.append(f"{where}: datasource must be one of the provisioned {datasource_uids}")
        if not panel.targets:
            problems.append(f"{where}: no queries")
        ref_ids = set()
        for t in panel.targets or []:
            # A Prometheus target decodes into the typed Prometheus query, anything else does not.
            if not isinstance(t, pm.Dataquery):
                problems.append(f"{where}: target is not a Prometheus query: {t.to_json()}")
                continue
            if not t.expr.strip():
                problems.append(f"{where}: target {t.ref_id!r} has no expr")
            if not t.ref_id or t.ref_id in ref_ids:
                problems.append(f"{where}: refIds must be present and unique")
            ref_ids.add(t.ref_id)
    for anno in model.annotations.list_val or []:
        if anno.datasource.type_val == "prometheus":
            if anno.datasource.uid not in datasource_uids or not (anno.expr or "").strip():
                problems.append(f"annotation {anno.name!r}: needs a provisioned datasource and an expr")
    for var in model.templating.list_val or []:
        if var.type_val == dm.VariableType.QUERY and (
            var.datasource is None or var.datasource.uid not in datasource_uids
        ):
            problems.append(f"variable {var.name!r}: datasource must be provisioned")
    return [f"{path}: {p}" for p in problems]


def provisioned(directory):
    """(datasource uids, problems) of Grafana provisioning files in `directory`."""
    problems = []
    d = Path(directory)
    sources = yaml.safe_load((d / "datasources.yml").read_text())
    uids = {s.get("uid") for s in sources.get("datasources", []) if s.get("type") == "prometheus"}
    if sources.get("apiVersion") != 1 or not uids or None in uids:
        problems.append("datasources.yml: apiVersion 1 and Prometheus datasources with a fixed uid")
    boards = yaml.safe_load((d / "dashboards.yml").read_text())
    providers = boards.get("providers", [])
    if boards.get("apiVersion") != 1 or not providers:
        problems.append("dashboards.yml: apiVersion 1 and at least one provider")
    for p in providers:
        if p.get("type") != "file" or not p.get("options", {}).get("path"):
            problems.append(f"dashboards.yml: provider {p.get('name')!r} needs type file and options.path")
    return uids, problems


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dashboards", nargs="+", help="dashboard JSON files")
    parser.add_argument(
        "--provisioning",
        default=Path(__file__).parent / "provisioning",
        help="directory with datasources.yml and dashboards.yml (default: next to this script)",
    )
    args = parser.parse_args(argv)
    plugins.register_default_plugins()
    uids, problems = provisioned(args.provisioning)
    for f in args.dashboards:
        problems += check_dashboard(f, uids)
    for p in problems:
        print(p)
    if not problems:
        print(f"ok: {len(args.dashboards)} dashboard(s) match Grafana's model; datasource uids {sorted(uids)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
