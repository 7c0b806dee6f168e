// The API reference page: reads /openapi.json (served without the key) and writes a section per
// operation (summary, description, parameters, request body, responses), with the schemas the
// document names listed at the end. Everything is built with DOM nodes and textContent: nothing in
// the document is ever parsed as HTML.
"use strict";

const content = document.getElementById("content");
const toc = document.getElementById("toc");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// Backticked spans in descriptions become <code>; the rest stays text.
function prose(text) {
  const p = el("p");
  String(text || "").split(/(`[^`]*`)/).forEach((part) => {
    if (part.startsWith("`") && part.endsWith("`") && part.length > 1) p.append(el("code", {}, part.slice(1, -1)));
    else if (part) p.append(part);
  });
  return p;
}

function resolve(doc, node) {
  let seen = 0;
  while (node && node.$ref && seen++ < 32) {
    const path = node.$ref.replace(/^#\//, "").split("/");
    node = path.reduce((n, key) => (n ? n[key.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined), doc);
  }
  return node || {};
}

function refLink(ref) {
  const name = ref.split("/").pop();
  return el("a", { href: "#schema-" + name }, name);
}

// A schema as a short line: a named schema links to its section, others are summarised.
function schemaSummary(schema) {
  if (!schema) return "";
  if (schema.$ref) return refLink(schema.$ref);
  const span = el("span");
  if (schema.type === "array") {
    span.append("array of ", schemaSummary(schema.items));
    return span;
  }
  for (const key of ["oneOf", "anyOf", "allOf"]) {
    if (Array.isArray(schema[key])) {
      schema[key].forEach((s, i) => { if (i) span.append(key === "allOf" ? " and " : " or "); span.append(schemaSummary(s)); });
      return span;
    }
  }
  span.append(schema.type ? String(schema.type) : "any");
  if (schema.enum) span.append(" (" + schema.enum.map((v) => JSON.stringify(v)).join(", ") + ")");
  if (schema.format) span.append(" · " + schema.format);
  return span;
}

function schemaTable(doc, schema) {
  const s = resolve(doc, schema);
  const props = s.properties || {};
  const names = Object.keys(props);
  if (names.length === 0) return el("p", {}, schemaSummary(schema));
  const required = new Set(s.required || []);
  const body = el("tbody");
  for (const name of names) {
    const p = props[name];
    body.append(el("tr", {}, el("td", {}, el("code", {}, name), required.has(name) ? " *" : ""),
                    el("td", {}, schemaSummary(p)), el("td", {}, resolve(doc, p).description || p.description || "")));
  }
  return el("table", { class: "schema" }, el("thead", {}, el("tr", {}, el("th", {}, "Field"), el("th", {}, "Type"),
                                                                    el("th", {}, "Description"))), body);
}

function operation(doc, path, method, op, id) {
  const section = el("section", { class: "panel operation", id });
  section.append(el("h2", {}, el("span", { class: "method method-" + method }, method), " ", path));
  if (op.summary) section.append(el("strong", {}, op.summary));
  if (op.description) section.append(prose(op.description));
  const params = (op.parameters || []).map((p) => resolve(doc, p));
  if (params.length) {
    section.append(el("h3", {}, "Parameters"));
    const body = el("tbody");
    for (const p of params) {
      body.append(el("tr", {}, el("td", {}, el("code", {}, p.name || ""), p.required ? " *" : ""), el("td", {}, p.in || ""),
                      el("td", {}, schemaSummary(p.schema)), el("td", {}, p.description || "")));
    }
    section.append(el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "In"),
                                                      el("th", {}, "Type"), el("th", {}, "Description"))), body));
  }
  if (op.requestBody) {
    const rb = resolve(doc, op.requestBody);
    section.append(el("h3", {}, "Request body" + (rb.required ? " (required)" : "")));
    if (rb.description) section.append(prose(rb.description));
    for (const [type, media] of Object.entries(rb.content || {})) {
      section.append(el("p", { class: "muted" }, type, " · ", schemaSummary(media.schema)));
      section.append(schemaTable(doc, media.schema));
    }
  }
  section.append(el("h3", {}, "Responses"));
  const body = el("tbody");
  for (const [code, raw] of Object.entries(op.responses || {})) {
    const r = resolve(doc, raw);
    const types = Object.entries(r.content || {}).map(([type, media]) => el("span", {}, type + " ", schemaSummary(media.schema)));
    body.append(el("tr", {}, el("td", {}, el("code", {}, code)), el("td", {}, r.description || ""), el("td", {}, ...types)));
  }
  section.append(el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Code"), el("th", {}, "Meaning"),
                                                    el("th", {}, "Body"))), body));
  return section;
}

async function main() {
  const response = await fetch("/openapi.json");
  if (!response.ok) throw new Error("/openapi.json answered " + response.status);
  const doc = await response.json();
  document.title = (doc.info && doc.info.title) || "API";
  content.replaceChildren();
  const intro = el("section", { class: "panel" }, el("h2", {}, doc.info.title + " · version " + doc.info.version));
  intro.append(prose(doc.info.description));
  intro.append(el("p", {}, "Authentication: when the endpoint has an API key, every route here but this page, the dashboard and ",
                  el("code", {}, "/openapi.json"), " needs ", el("code", {}, "Authorization: Bearer KEY"), "."));
  intro.append(el("p", {}, "Beside the routes below: the dashboard at ", el("a", { href: "/" }, "/"), ", Prometheus metrics at ",
                  el("code", {}, "GET /metrics"), " and the dashboard's ", el("code", {}, "GET /recent-jobs"),
                  " (docs/observability.md in the repository lists every metric)."));
  content.append(intro);

  // The /v2/{endpoint_id}/... twins are the same operations: list each once, and say so.
  const paths = Object.keys(doc.paths || {}).filter((p) => !p.startsWith("/v2/{endpoint_id}/"));
  const tags = new Map();
  let n = 0;
  for (const path of paths) {
    for (const [method, op] of Object.entries(doc.paths[path])) {
      if (!["get", "post", "put", "delete", "patch"].includes(method)) continue;
      const id = "op-" + (op.operationId || n++);
      const tag = (op.tags && op.tags[0]) || "other";
      if (!tags.has(tag)) tags.set(tag, []);
      tags.get(tag).push({ path, method, op, id });
    }
  }
  for (const [tag, ops] of tags) {
    toc.append(el("h3", {}, tag));
    content.append(el("h2", {}, tag));
    for (const { path, method, op, id } of ops) {
      toc.append(el("a", { href: "#" + id }, el("span", { class: "method method-" + method }, method), path));
      const section = operation(doc, path, method, op, id);
      if (doc.paths["/v2/{endpoint_id}" + path]) {
        section.append(el("p", { class: "muted" }, "Also served as ", el("code", {}, "/v2/{endpoint_id}" + path), "."));
      }
      content.append(section);
    }
  }
  const schemas = (doc.components && doc.components.schemas) || {};
  if (Object.keys(schemas).length) {
    toc.append(el("h3", {}, "schemas"));
    content.append(el("h2", {}, "Schemas"));
    for (const [name, schema] of Object.entries(schemas)) {
      toc.append(el("a", { href: "#schema-" + name }, name));
      const section = el("section", { class: "panel operation", id: "schema-" + name }, el("h2", {}, name));
      if (schema.description) section.append(prose(schema.description));
      section.append(schemaTable(doc, schema));
      content.append(section);
    }
  }
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

main().catch((e) => { content.replaceChildren(el("p", { class: "error" }, "Cannot show the API: " + e.message)); });
