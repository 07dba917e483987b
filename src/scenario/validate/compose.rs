//! `stack.compose`: the services come from compose files (read by [`crate::scenario::compose`]),
//! and `stack.services` adds to them or overrides parts of them (`health`, `backup`, `restore`,
//! `env`, `ports`, ...); a name the compose files do not have is a service of its own.
//!
//! Mistakes in a compose file are reported against that file (its own file:line:col); mistakes in
//! the scenario against the scenario.

use crate::scenario::keys;
use std::path::PathBuf;

use indexmap::IndexMap;

use super::walk::{ServiceInfo, Services, Walk};
use crate::scenario::compose::{self, ComposeError, Request};
use crate::scenario::model::{ComposeOrigin, Service};
use crate::scenario::read::Fields;
use crate::scenario::report::Span;
use crate::scenario::tree::{Node, Value};

impl Walk<'_> {
    /// The stack of a scenario with `stack.compose`.
    pub(super) fn compose_stack(&mut self, fields: &Fields<'_>) -> Option<Services> {
        let entry = fields.entry("compose").expect("called when `compose` is present");
        let compose_span = entry.key.span;
        let files = self.compose_files(&entry.value)?;
        let profiles = match fields.get("profiles") {
            Some(node) => {
                let items = self.r.list(node, "a list of profile names")?;
                let mut names = Vec::new();
                for item in items {
                    names.push(self.r.non_empty_text(item, "a profile name")?);
                }
                names
            }
            None => Vec::new(),
        };
        let request = Request {
            files: files.iter().map(|(path, _)| path.clone()).collect(),
            profiles: profiles.clone(),
            environment: std::env::vars().collect(),
        };
        let overrides = fields.get("services");
        let loaded = match compose::load(&request) {
            Ok(loaded) => Some(loaded),
            Err(ComposeError::Read { index, error }) => {
                let (path, span) = &files[index];
                self.r
                    .error(
                        *span,
                        format!("cannot read compose file `{}`", path.display()),
                        "not readable",
                    )
                    .help(format!("{error}; paths are relative to the scenario's folder"));
                return None;
            }
            Err(ComposeError::Invalid { diagnostics, services }) => {
                self.r.problems.foreign(diagnostics);
                // Stand-ins, so the rest of the scenario is checked without blaming it.
                let mut stand_ins = IndexMap::new();
                for name in services {
                    stand_ins.insert(name, self.stand_in(compose_span));
                }
                if let Some(node) = overrides {
                    self.overrides(node, &mut stand_ins, compose_span, false);
                }
                let services = Services(stand_ins);
                self.check_services(&services);
                // Every stand-in lacks its service, so the scenario is rejected; its other
                // parts are still checked against the names.
                return Some(services);
            }
        };
        let loaded = loaded.expect("handled above");
        let mut services: IndexMap<String, ServiceInfo> = IndexMap::new();
        for (name, compose) in &loaded.services {
            let service = &compose.service;
            let mut info = self.stand_in(compose_span);
            info.ports = Some(service.ports.clone());
            info.has_health = service.health.is_some();
            info.health_interval = service.health.as_ref().map(|h| h.interval);
            info.depends_on =
                service.depends_on.iter().map(|d| (d.clone(), compose_span)).collect();
            info.replicas = service.replicas;
            info.service = Some(service.clone());
            services.insert(name.clone(), info);
        }
        if let Some(node) = overrides {
            self.overrides(node, &mut services, compose_span, true);
        }
        let services = Services(services);
        self.check_services(&services);
        self.compose = Some(ComposeOrigin {
            files: request.files,
            profiles,
            project: loaded.project,
            warnings: loaded.warnings,
        });
        Some(services)
    }

    /// `compose: FILE` or `compose: [FILE, ...]`, resolved against the scenario's folder.
    fn compose_files(&mut self, node: &Node) -> Option<Vec<(PathBuf, Span)>> {
        let items: Vec<&Node> = match &node.value {
            Value::Seq(items) if !items.is_empty() => items.iter().collect(),
            Value::Seq(_) => {
                self.r
                    .error(node.span, "`compose` lists no files", "empty")
                    .help("name a compose file");
                return None;
            }
            _ => vec![node],
        };
        let mut files = Some(Vec::new());
        for item in items {
            match (self.r.non_empty_text(item, "a compose file path"), &mut files) {
                (Some(text), Some(files)) => files.push((self.folder.join(text), item.span)),
                _ => files = None,
            }
        }
        files
    }

    fn stand_in(&self, key: Span) -> ServiceInfo {
        ServiceInfo {
            key,
            ports: None,
            has_health: false,
            health_interval: None,
            has_backup: false,
            has_restore: false,
            depends_on: Vec::new(),
            env_refs: Vec::new(),
            health_port: None,
            replicas: 1,
            service: None,
        }
    }

    /// `stack.services` beside `compose`: overrides of compose services, or services of their own.
    fn overrides(
        &mut self,
        node: &Node,
        services: &mut IndexMap<String, ServiceInfo>,
        compose_span: Span,
        complete: bool,
    ) {
        let Value::Map(entries) = &node.value else {
            self.r.wrong_type(node, "a mapping of service names to services");
            return;
        };
        for entry in entries {
            let Some(name) = self.service_name(&entry.key) else { continue };
            match services.get_mut(&name) {
                Some(info) => {
                    let mut info_taken = std::mem::replace(info, self.stand_in(compose_span));
                    self.overlay(&name, entry.key.span, &entry.value, &mut info_taken, complete);
                    services.insert(name, info_taken);
                }
                None => {
                    let info = self.service(&name, entry.key.span, &entry.value);
                    services.insert(name, info);
                }
            }
        }
    }

    /// Apply one `stack.services.NAME` to the compose service `NAME`.
    fn overlay(
        &mut self,
        name: &str,
        key: Span,
        node: &Node,
        info: &mut ServiceInfo,
        complete: bool,
    ) {
        let context = format!("service `{name}`");
        let Some(fields) =
            self.r.fields(node, key, context, "a mapping of service keys", &keys::SERVICE)
        else {
            info.service = None;
            return;
        };
        info.key = key;
        let mut service: Option<Service> = info.service.take();
        let mut ok = complete;
        if fields.get("image").is_some() || fields.get("build").is_some() {
            match self.image_source(&fields) {
                Some(image) => {
                    if let Some(service) = &mut service {
                        service.image = image;
                    }
                }
                None => ok = false,
            }
        }
        if let Some(node) = fields.get("env") {
            match self.env(node, info) {
                Some(env) => {
                    if let Some(service) = &mut service {
                        service.env.extend(env);
                    }
                }
                None => ok = false,
            }
        }
        if let Some(node) = fields.get("command") {
            match self.r.argv(node, "command") {
                Some(command) => {
                    if let Some(service) = &mut service {
                        service.command = Some(command);
                    }
                }
                None => ok = false,
            }
        }
        if let Some(node) = fields.get("ports") {
            match self.ports(node) {
                Some(ports) => {
                    if let Some(service) = &mut service {
                        for port in ports {
                            if !service.ports.contains(&port) {
                                service.ports.push(port);
                            }
                        }
                        info.ports = Some(service.ports.clone());
                    }
                }
                None => {
                    ok = false;
                    info.ports = None;
                }
            }
        }
        if let Some(entry) = fields.entry("health") {
            info.has_health = true;
            match self.health(&entry.value, Some(entry.key.span), info) {
                Some(health) => {
                    if let Some(service) = &mut service {
                        service.health = Some(health);
                    }
                }
                None => ok = false,
            }
        }
        if let Some(node) = fields.get("startup-timeout") {
            match self.r.duration(node) {
                Some(timeout) => {
                    if let Some(service) = &mut service {
                        service.startup_timeout = timeout;
                    }
                }
                None => ok = false,
            }
        }
        if let Some(node) = fields.get("depends-on") {
            match self.depends_on(node, info) {
                Some(extra) => {
                    if let Some(service) = &mut service {
                        for dependency in extra {
                            if !service.depends_on.contains(&dependency) {
                                service.depends_on.push(dependency);
                            }
                        }
                    }
                }
                None => ok = false,
            }
        }
        for hook in ["backup", "restore"] {
            let Some(node) = fields.get(hook) else { continue };
            if hook == "backup" {
                info.has_backup = true;
            } else {
                info.has_restore = true;
            }
            match self.r.argv(node, hook) {
                Some(argv) => {
                    if let Some(service) = &mut service {
                        if hook == "backup" {
                            service.backup = Some(argv);
                        } else {
                            service.restore = Some(argv);
                        }
                    }
                }
                None => ok = false,
            }
        }
        if let Some(node) = fields.get("replicas") {
            match self.r.integer(node, "a number of replicas", 1..=super::services::MAX_REPLICAS) {
                Some(n) => {
                    let n = u32::try_from(n).expect("checked range");
                    info.replicas = n;
                    if let Some(service) = &mut service {
                        service.replicas = n;
                    }
                }
                None => ok = false,
            }
        }
        if let Some(service) = &service {
            info.health_interval = service.health.as_ref().map(|h| h.interval);
        }
        info.service = if ok { service } else { None };
    }
}
