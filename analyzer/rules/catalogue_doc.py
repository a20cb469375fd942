"""The rule catalogue page (docs/rule-catalogue.md), generated from the rule files."""

from __future__ import annotations

from needle.analyzer.rules.catalog import RuleDocument


def _flat(text: object) -> str:
    return " ".join(str(text).split())


def catalogue_markdown(rules: list[RuleDocument]) -> str:
    ordered = sorted(rules, key=lambda rule: rule.id)
    lines = [
        "# Rule catalogue",
        "",
        "Generated from the rule files in `rules/` by "
        "`needle rules list --format markdown`; do not edit by hand.",
        "",
        "| rule | severity | what it finds |",
        "|---|---|---|",
    ]
    lines += [
        f"| [`{r.id}`](#{r.id.replace('.', '')}) | {r.severity} | {r.title} |" for r in ordered
    ]
    for rule in ordered:
        data = rule.data
        lines += ["", f"## {rule.id}", "", f"**{rule.title}** ({rule.severity})", ""]
        if data.get("description"):
            lines += [_flat(data["description"]), ""]
        where = f" where `{_flat(data['where'])}`" if data.get("where") else ""
        lines += [
            f"- checks: for each `{data['for_each']}`{where}, that `{_flat(data['assert'])}`",
            f"- reports: {_flat(data['message'])}",
        ]
        if data.get("needs"):
            lines.append(f"- needs: {', '.join(f'`{n}`' for n in data['needs'])}")
        lines.append(f"- fix: {_flat(data['remediation'])}")
        for reference in data.get("references", []):
            lines.append(f"- see: <{reference}>")
    return "\n".join(lines) + "\n"
