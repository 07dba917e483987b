//! Relations across compose services: profiles, `depends_on` (known, active, healthy when asked,
//! no cycles), named volumes (declared at the top level, local), and networks.
//!
//! Networks: firedrill runs every service on the run's one network. A file that only names
//! networks (every service shares at least one with every other) means the same thing; a file
//! where two services share no network is *separating* them, which one network cannot honour, so
//! that is an error naming both services.

use indexmap::IndexMap;

use super::keys;
use super::service::{ComposeWalk, ServiceFacts};
use super::{ComposeService, Condition};
use crate::scenario::report::Span;
use crate::scenario::suggest;
use crate::scenario::tree::{Node, ScalarKind, Value};

impl ComposeWalk<'_> {
    /// The whole file: top-level keys, then every service, then the checks across them.
    pub(super) fn stack(
        &mut self,
        root: &Node,
        profiles: &[String],
    ) -> Option<IndexMap<String, ComposeService>> {
        let top = self.keys(root, keys::TOP, "the compose file", "a mapping with `services`")?;
        let volumes = match top.get("volumes") {
            Some(entry) => self.declared(&entry.value, keys::VOLUME, "volume"),
            None => Some(IndexMap::new()),
        };
        let networks = match top.get("networks") {
            Some(entry) => self.declared(&entry.value, keys::NETWORK, "network"),
            None => Some(IndexMap::new()),
        };
        let Some(services_entry) = top.get("services") else {
            self.r.error(
                self.r.head(root),
                "missing `services` in the compose file",
                "needs `services`",
            );
            return None;
        };
        let Value::Map(entries) = &services_entry.value.value else {
            self.r.wrong_type(&services_entry.value, "a mapping of service names to services");
            return None;
        };
        let mut all: IndexMap<String, ServiceFacts> = IndexMap::new();
        let mut complete = true;
        for entry in entries {
            let name = entry.key.scalar().map(|s| s.text.clone()).unwrap_or_default();
            if !is_service_name(&name) {
                self.r
                    .error(entry.key.span, format!("service name `{name}` is not usable by firedrill"), "here")
                    .help("use lowercase letters, digits, `-` and `_`, starting with a letter or digit (firedrill names replicas `NAME.N`)");
                complete = false;
                continue;
            }
            let facts = self.service(&name, entry.key.span, &entry.value);
            all.insert(name, facts);
        }
        if all.is_empty() && complete {
            self.r.error(
                self.r.head(&services_entry.value),
                "the compose file has no services",
                "empty",
            );
            return None;
        }
        // Profiles: a service with `profiles` runs only when one of them is selected.
        let active: Vec<String> = all
            .iter()
            .filter(|(_, f)| {
                f.profiles.is_empty() || f.profiles.iter().any(|p| profiles.contains(p))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if active.is_empty() && !all.is_empty() {
            self.r
                .error(
                    self.r.head(&services_entry.value),
                    "no service is active with the selected profiles",
                    "no services",
                )
                .help("select a profile under `stack.profiles`, or give a service no `profiles`");
            return None;
        }
        self.check_dependencies(&all, &active);
        if let Some(volumes) = &volumes {
            for name in &active {
                for (volume, span) in &all[name].volumes {
                    if !volumes.contains_key(volume) {
                        let hint = match suggest::closest(
                            volume,
                            volumes.keys().map(String::as_str),
                        ) {
                            Some(close) => format!(
                                "did you mean `{close}`? A named volume is declared under the top-level `volumes`"
                            ),
                            None => format!(
                                "declare it under the top-level `volumes:` (`{volume}: {{}}`), or write `./{volume}` for a folder"
                            ),
                        };
                        self.r
                            .error(
                                *span,
                                format!("volume `{volume}` is not declared"),
                                "undeclared",
                            )
                            .help(hint);
                    }
                }
            }
        }
        if let Some(networks) = &networks {
            self.check_networks(&all, &active, networks);
        }

        let mut out = IndexMap::new();
        for name in active {
            let facts = all.shift_remove(&name).expect("active services exist");
            let Some(mut compose) = facts.service else {
                complete = false;
                continue;
            };
            for (dependency, condition, _, _) in &facts.depends_on {
                if let Some(condition) = condition
                    && dependency != &name
                {
                    compose.depends_on.push((dependency.clone(), *condition));
                }
            }
            out.insert(name, compose);
        }
        // Only dependencies that run: a `required: false` one outside the profiles is dropped.
        let names: Vec<String> = out.keys().cloned().collect();
        for compose in out.values_mut() {
            compose.depends_on.retain(|(d, _)| names.contains(d));
            compose.service.depends_on =
                compose.depends_on.iter().map(|(d, _)| d.clone()).collect();
        }
        (complete && volumes.is_some() && networks.is_some()).then_some(out)
    }

    /// Top-level `volumes` / `networks`: names to `{}` / null / a mapping of `table` keys; only
    /// local volumes and bridge networks created by the run.
    fn declared(
        &mut self,
        node: &Node,
        table: &[(&str, keys::Support)],
        what: &str,
    ) -> Option<IndexMap<String, Span>> {
        let Value::Map(entries) = &node.value else {
            self.r.wrong_type(node, &format!("a mapping of {what} names"));
            return None;
        };
        let mut out = Some(IndexMap::new());
        for entry in entries {
            let name = entry.key.scalar().map(|s| s.text.clone()).unwrap_or_default();
            let null =
                matches!(&entry.value.value, Value::Scalar(s) if s.kind() == ScalarKind::Null);
            if !null {
                let Some(fields) =
                    self.keys(&entry.value, table, &format!("{what} `{name}`"), "a mapping")
                else {
                    out = None;
                    continue;
                };
                if let Some(external) = fields.get("external")
                    && external.value.scalar().is_none_or(|s| s.text != "false")
                {
                    let why = if what == "volume" {
                        "firedrill creates every volume per run and removes it afterwards; an external volume holds data that is not the rehearsal's to touch"
                    } else {
                        "every service sits on the run's own network; an external network would join the rehearsal to something outside it"
                    };
                    self.r
                        .error(
                            external.key.span,
                            format!("external {what} `{name}` is not supported"),
                            "external",
                        )
                        .help(why);
                    out = None;
                }
                if let Some(driver) = fields.get("driver") {
                    let expected = if what == "volume" { "local" } else { "bridge" };
                    if driver.value.scalar().is_none_or(|s| s.text != expected) {
                        self.r
                            .error(
                                driver.value.span,
                                format!("{what} driver must be `{expected}`"),
                                "here",
                            )
                            .help(format!(
                                "firedrill creates plain `{expected}` {what}s for each run"
                            ));
                        out = None;
                    }
                }
            }
            if let Some(out) = &mut out {
                out.insert(name, entry.key.span);
            }
        }
        out
    }

    fn check_dependencies(&mut self, all: &IndexMap<String, ServiceFacts>, active: &[String]) {
        for name in active {
            let facts = &all[name];
            for (dependency, condition, required, span) in &facts.depends_on {
                if dependency == name {
                    self.r.error(*span, format!("`{name}` depends on itself"), "itself");
                    continue;
                }
                let Some(target) = all.get(dependency) else {
                    let hint = match suggest::closest(dependency, all.keys().map(String::as_str)) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!(
                            "services: {}",
                            suggest::list_all(all.keys().map(String::as_str))
                        ),
                    };
                    self.r
                        .error(
                            *span,
                            format!("unknown service `{dependency}`"),
                            "not in `services`",
                        )
                        .help(hint);
                    continue;
                };
                if *required && !active.contains(dependency) {
                    self.r
                        .error(
                            *span,
                            format!("`{dependency}` is not active with the selected profiles"),
                            "inactive",
                        )
                        .help(format!(
                            "select one of its profiles ({}) under `stack.profiles`",
                            target.profiles.join(", ")
                        ));
                }
                if *condition == Some(Condition::Healthy)
                    && !target.has_health
                    && target.service.is_some()
                {
                    self.r
                        .error(*span, format!("`{name}` waits for `{dependency}` to be healthy, but `{dependency}` has no healthcheck"), "service_healthy")
                        .help(format!("give `{dependency}` a `healthcheck`, or use `condition: service_started`"));
                }
            }
        }
        // Cycles, each reported once at the edge that closes it.
        let mut state: IndexMap<&str, u8> = active.iter().map(|n| (n.as_str(), 0)).collect();
        for start in active {
            let mut path: Vec<&str> = Vec::new();
            self.visit(start, all, &mut state, &mut path);
        }
    }

    fn visit<'a>(
        &mut self,
        name: &'a str,
        all: &'a IndexMap<String, ServiceFacts>,
        state: &mut IndexMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) {
        match state.get(name) {
            Some(0) => {}
            _ => return,
        }
        state.insert(name, 1);
        path.push(name);
        for (dependency, _, _, span) in &all[name].depends_on {
            match state.get(dependency.as_str()) {
                Some(0) => self.visit(dependency, all, state, path),
                Some(1) => {
                    let from = path.iter().position(|n| n == dependency).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        path[from..].iter().map(|n| format!("`{n}`")).collect();
                    cycle.push(format!("`{dependency}`"));
                    self.r
                        .error(*span, format!("dependency cycle: {}", cycle.join(" → ")), "closes a cycle")
                        .help("services start in `depends_on` order, so one of these dependencies has to go");
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(name, 2);
    }

    fn check_networks(
        &mut self,
        all: &IndexMap<String, ServiceFacts>,
        active: &[String],
        declared: &IndexMap<String, Span>,
    ) {
        let mut sets: Vec<(&str, Vec<String>, Span)> = Vec::new();
        for name in active {
            let facts = &all[name];
            let (networks, span) = match &facts.networks {
                Some((list, span)) => {
                    for (network, at) in list {
                        if network != "default" && !declared.contains_key(network) {
                            self.r
                                .error(
                                    *at,
                                    format!("network `{network}` is not declared"),
                                    "undeclared",
                                )
                                .help("declare it under the top-level `networks:`");
                        }
                    }
                    (list.iter().map(|(n, _)| n.clone()).collect(), *span)
                }
                None => (vec!["default".to_owned()], facts.key),
            };
            sets.push((name, networks, span));
        }
        for (i, (name, networks, span)) in sets.iter().enumerate() {
            if let Some((other, _, _)) =
                sets[..i].iter().find(|(_, theirs, _)| !theirs.iter().any(|n| networks.contains(n)))
            {
                self.r
                    .error(*span, format!("`{name}` and `{other}` share no network"), "separated")
                    .help("firedrill runs every service on the run's one network, so it cannot keep them apart; put both on a common network (firedrill's link faults can cut the path between them during a rehearsal)");
            }
        }
    }
}

fn is_service_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}
