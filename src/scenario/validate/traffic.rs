//! `traffic`: named open-loop request streams, their targets (service and declared port), rate,
//! concurrency and write verification; and references to them from steps and `expect`.

use crate::scenario::keys;
use std::time::Duration;

use indexmap::IndexMap;

use super::walk::{Services, Walk, is_name};
use crate::scenario::model::{Traffic, TrafficRequest, VerifyWrites};
use crate::scenario::report::Span;
use crate::scenario::suggest;
use crate::scenario::tree::{Node, ScalarKind, Value};

/// The traffic entries by name, for references from steps and `expect`.
#[derive(Default)]
pub(super) struct TrafficTable {
    /// Name → whether it verifies writes (`None` when `verify-writes` had mistakes).
    pub(super) names: IndexMap<String, Option<bool>>,
    /// Some entry could not be named, so "unknown traffic" may be a consequence of another mistake.
    pub(super) incomplete: bool,
}

impl Walk<'_> {
    pub(super) fn traffic(
        &mut self,
        node: &Node,
        services: &Services,
    ) -> (Option<IndexMap<String, Traffic>>, TrafficTable) {
        let Value::Map(entries) = &node.value else {
            self.r.wrong_type(node, "a mapping of traffic names to traffic entries");
            return (None, TrafficTable { names: IndexMap::new(), incomplete: true });
        };
        let mut table = TrafficTable::default();
        let mut traffic = Some(IndexMap::with_capacity(entries.len()));
        for entry in entries {
            let Some(name) = self.traffic_name(&entry.key) else {
                table.incomplete = true;
                traffic = None;
                continue;
            };
            let (item, verifies) =
                self.traffic_entry(&name, entry.key.span, &entry.value, services);
            table.names.insert(name.clone(), verifies);
            match (&mut traffic, item) {
                (Some(traffic), Some(item)) => {
                    traffic.insert(name, item);
                }
                _ => traffic = None,
            }
        }
        (traffic, table)
    }

    fn traffic_name(&mut self, key: &Node) -> Option<String> {
        let name = key.scalar().map(|s| s.text.clone()).unwrap_or_default();
        if is_name(&name, &['-', '_']) {
            return Some(name);
        }
        let span = self.r.head(key);
        self.r
            .error(span, format!("invalid traffic name `{name}`"), "not a valid name")
            .help("use lowercase letters, digits, `-` and `_`, starting with a letter or digit");
        None
    }

    /// One entry; also says whether it verifies writes, even when other parts have mistakes.
    fn traffic_entry(
        &mut self,
        name: &str,
        key: Span,
        node: &Node,
        services: &Services,
    ) -> (Option<Traffic>, Option<bool>) {
        let context = format!("traffic `{name}`");
        let Some(fields) =
            self.r.fields(node, key, context, "a mapping with `http` and `rate`", &keys::TRAFFIC)
        else {
            return (None, None);
        };
        let request = self.r.require(&fields, "http").and_then(|n| {
            let key = fields.entry("http").map_or(key, |e| e.key.span);
            self.traffic_request(n, key, services)
        });
        let rate = self.r.require(&fields, "rate").and_then(|n| self.r.rate(n));
        let concurrency = match fields.get("concurrency") {
            Some(node) => self
                .r
                .integer(node, "a number of requests", 1..=100_000)
                .map(|n| usize::try_from(n).expect("checked range")),
            None => Some(64),
        };
        let timeout =
            fields.get("timeout").map_or(Some(Duration::from_secs(2)), |n| self.r.duration(n));
        let (verify_writes, verifies) = match fields.entry("verify-writes") {
            None => (Some(None), Some(false)),
            Some(entry) => {
                let path = request.as_ref().map(|r| r.path.as_str());
                self.verify_writes(&entry.value, entry.key.span, path)
            }
        };
        let traffic = (|| {
            Some(Traffic {
                name: name.to_owned(),
                request: request?,
                rate_per_second: rate?,
                concurrency: concurrency?,
                timeout: timeout?,
                verify_writes: verify_writes?,
            })
        })();
        (traffic, verifies)
    }

    fn traffic_request(
        &mut self,
        node: &Node,
        key: Span,
        services: &Services,
    ) -> Option<TrafficRequest> {
        let fields = self.r.fields(
            node,
            key,
            "`http`",
            "a mapping with `service`, `port` and `path`",
            &keys::REQUEST,
        )?;
        let service_node = self.r.require(&fields, "service");
        let service = service_node.and_then(|n| self.r.text(n, "a service name"));
        let info = match (&service, service_node) {
            (Some(name), Some(node)) => self.known_service(services, name, node.span),
            _ => None,
        };
        let port_node = self.r.require(&fields, "port");
        let port = port_node.and_then(|n| self.r.port(n));
        if let (Some(name), Some(info), Some(port), Some(node)) = (&service, info, port, port_node)
        {
            self.declared_port(name, info, port, node.span);
        }
        let method = match fields.get("method") {
            None => Some("GET".to_owned()),
            Some(node) => self.method(node),
        };
        let path = self.http_path(fields.get("path"));
        let body = match fields.get("body") {
            None => Some(None),
            Some(node) => self.json_body(node).map(Some),
        };
        let status = fields.get("status").map_or(Some(200), |n| self.r.status(n));
        Some(TrafficRequest {
            service: service?,
            port: port?,
            method: method?,
            path: path?,
            body: body?,
            status: status?,
        })
    }

    /// `body`: text that is sent as `application/json`, so it must be JSON.
    pub(super) fn json_body(&mut self, node: &Node) -> Option<String> {
        let hint = r#"write the JSON as a quoted string: `body: '{"customer":"acme"}'`"#;
        let Some(scalar) = node.scalar().filter(|s| s.kind() != ScalarKind::Null) else {
            self.r.wrong_type(node, "a JSON string").help(hint);
            return None;
        };
        if let Err(error) = serde_json::from_str::<serde_json::Value>(&scalar.text) {
            self.r
                .error(node.span, "`body` is not valid JSON", error.to_string())
                .help(format!("it is sent as `application/json`; {hint}"));
            return None;
        }
        Some(scalar.text.clone())
    }

    /// `verify-writes: true | false | { id-field, read-path, status }`; also whether it verifies.
    fn verify_writes(
        &mut self,
        node: &Node,
        key: Span,
        path: Option<&str>,
    ) -> (Option<Option<VerifyWrites>>, Option<bool>) {
        let default_read_path = |path: &str| format!("{}/{{id}}", path.trim_end_matches('/'));
        if node.scalar().is_some_and(|s| s.kind() == ScalarKind::Bool) {
            let Some(on) = self.r.boolean(node, "`true` or `false`") else { return (None, None) };
            if !on {
                return (Some(None), Some(false));
            }
            let verify = path.map(|path| {
                Some(VerifyWrites {
                    id_field: "id".to_owned(),
                    read_path: default_read_path(path),
                    status: 200,
                })
            });
            return (verify, Some(true));
        }
        let Some(fields) = self.r.fields(
            node,
            key,
            "`verify-writes`",
            "`true`, `false` or a mapping with `id-field`, `read-path` and `status`",
            &keys::VERIFY,
        ) else {
            return (None, None);
        };
        let id_field = match fields.get("id-field") {
            Some(node) => self.r.non_empty_text(node, "a JSON field name"),
            None => Some("id".to_owned()),
        };
        let read_path = match fields.get("read-path") {
            Some(node) => self.read_path(node, path),
            None => path.map(default_read_path),
        };
        let status = fields.get("status").map_or(Some(200), |n| self.r.status(n));
        let verify = (|| {
            Some(Some(VerifyWrites { id_field: id_field?, read_path: read_path?, status: status? }))
        })();
        (verify, Some(true))
    }

    fn read_path(&mut self, node: &Node, path: Option<&str>) -> Option<String> {
        let read_path = self.http_path(Some(node))?;
        if read_path.contains("{id}") {
            return Some(read_path);
        }
        let example = match path {
            Some(path) => format!("{}/{{id}}", path.trim_end_matches('/')),
            None => "/invoices/{id}".to_owned(),
        };
        self.r
            .error(node.span, format!("`read-path` `{read_path}` has no `{{id}}`"), "no `{id}`")
            .help(format!(
                "each acknowledged write is read back with `{{id}}` replaced by its id, \
                 e.g. `{example}`"
            ));
        None
    }

    /// A reference to a traffic entry by name.
    pub(super) fn traffic_ref(&mut self, node: &Node, table: &TrafficTable) -> Option<String> {
        let name = self.r.text(node, "a traffic name")?;
        if table.names.contains_key(&name) {
            return Some(name);
        }
        if table.incomplete {
            return None;
        }
        let hint = match suggest::closest(&name, table.names.keys().map(String::as_str)) {
            Some(close) => format!("did you mean `{close}`?"),
            None if table.names.is_empty() => {
                "declare it under the top-level `traffic` key".to_owned()
            }
            None => format!(
                "the traffic entries are {}",
                suggest::list_all(table.names.keys().map(String::as_str))
            ),
        };
        self.r.error(node.span, format!("unknown traffic `{name}`"), "not in `traffic`").help(hint);
        None
    }
}
