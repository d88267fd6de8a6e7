/*
 * k8s_manifests.test.mjs - the Kubernetes manifests of deploy/k8s, checked offline (no cluster).
 *
 * Every kustomization is rendered with `kubectl kustomize`, and every object it gives is checked
 * against the Kubernetes API's schema of its kind (the npm package kubernetes-models: its
 * compiled validators of the Kubernetes OpenAPI definitions) with unknown fields rejected: the
 * object is handed to the validator through a proxy that records which fields the schema read;
 * a field it never read is one the schema does not have (what kubectl's strict validation and
 * the API server's fieldValidation=Strict refuse). Then what a schema cannot see: each Service
 * and PodDisruptionBudget selects some pod, each named port and probe port exists, each
 * secretKeyRef/configMapKeyRef names a Secret/ConfigMap and key that exist, the HPA and the
 * ingress point at what exists. And what dstmc reads: each container running `dstmc SERVICE`
 * sets only environment variables that service reads (a DSTMC_* twin or an original's name,
 * from its --help), and `dstmc SERVICE --check-config` accepts that environment.
 * A negative test: a wrong field, a wrong type, a misspelt env name each fail.
 *
 * Skips (77) when kubectl is missing or too old to render the kustomizations (Debian 12's
 * kubernetes-client 1.20 embeds kustomize 2.0, without components).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync,
  writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const K8S = join(ROOT, 'deploy', 'k8s');
const BIN = process.env.DSTMC_BIN || join(ROOT, 'build', 'dstmc');
const webRequire = createRequire(join(ROOT, 'web', 'package.json'));
const YAML = webRequire('yaml');
const SCHEMAS = join(ROOT, 'web', 'node_modules', 'kubernetes-models', '_schemas');

function kubectlWorks() {
  const r = spawnSync('kubectl', ['kustomize', join(K8S, 'overlays', 'dev')], { encoding: 'utf8' });
  return r.status === 0 ? null : (r.error ? r.error.message : r.stderr.trim().split('\n')[0]);
}
const whyNot = kubectlWorks();
if (whyNot) {
  console.log(`k8s_manifests: skipped: kubectl kustomize cannot render deploy/k8s here: ${whyNot}`);
  process.exit(77);
}

/* ---- rendering ---- */

/* Every directory under deploy/k8s with a kustomization.yaml of kind Kustomization. */
function kustomizations(dir = K8S, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) kustomizations(join(dir, e.name), out);
  }
  const k = join(dir, 'kustomization.yaml');
  if (existsSync(k) && YAML.parse(readFileSync(k, 'utf8')).kind === 'Kustomization') {
    out.push(relative(K8S, dir));
  }
  return out.sort();
}

/*
 * Renders deploy/k8s/<rel> from a copy of deploy/k8s in which each secrets.env.example became
 * the secrets.env an operator writes. Returns the objects.
 */
let copy = null;
function render(rel, tree = K8S) {
  if (!copy) {
    copy = mkdtempSync(join(tmpdir(), 'dstmc-k8s-'));
    process.on('exit', () => rmSync(copy, { recursive: true, force: true }));
  }
  const dst = join(copy, `t${readdirSync(copy).length}`);
  cpSync(tree, dst, { recursive: true });
  (function examples(dir) {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) examples(p);
      else if (e.name === 'secrets.env.example') cpSync(p, join(dir, 'secrets.env'));
    }
  })(dst);
  const text = execFileSync('kubectl', ['kustomize', join(dst, rel)], { encoding: 'utf8' });
  const objs = YAML.parseAllDocuments(text).map((d) => d.toJS()).filter((o) => o);
  /* kustomize folds long base64 in a Secret's data over lines; the API server's decoder (Go's
   * encoding/base64) skips the newlines, the schema's "byte" pattern does not: as the server. */
  for (const o of objs) {
    if (o.kind === 'Secret') {
      for (const k of Object.keys(o.data || {})) o.data[k] = o.data[k].replace(/[\r\n]/g, '');
    }
  }
  return objs;
}

/* ---- schema validation, unknown fields rejected ---- */

/* apps/v1 Deployment → IoK8sApiAppsV1Deployment; v1 Service → IoK8sApiCoreV1Service. */
function schemaName(o) {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const g = group === '' ? 'Core' : group.split('.')[0];
  const cap = (s) => s[0].toUpperCase() + s.slice(1);
  return `IoK8sApi${cap(g)}${cap(version)}${o.kind}`;
}

/* A proxy of obj that notes every field read (seen: [path, object, Set of names read]). */
function watched(obj, path, seen) {
  if (obj === null || typeof obj !== 'object') return obj;
  const read = new Set();
  const kids = new Map();
  seen.push([path, obj, read]);
  return new Proxy(obj, {
    get(t, k, r) {
      if (typeof k === 'string') read.add(k);
      const v = Reflect.get(t, k, r);
      if (v === null || typeof v !== 'object' || !Object.hasOwn(t, k)) return v;
      if (!kids.has(k)) kids.set(k, watched(v, `${path}/${k}`, seen));
      return kids.get(k);
    },
  });
}

/* The problems of one object: schema errors, else unknown fields; [] when it is valid. */
function validate(o) {
  const where = `${o.kind || '?'} ${o.metadata?.name || '?'}`;
  if (!o.apiVersion || !o.kind) return [`${where}: no apiVersion or kind`];
  const file = join(SCHEMAS, `${schemaName(o)}.js`);
  if (!existsSync(file)) return [`${where}: no schema for ${o.apiVersion} ${o.kind}`];
  const { validate: fn } = webRequire(file);
  const seen = [];
  if (!fn(watched(structuredClone(o), '', seen))) {
    return fn.errors.map((e) => `${where}: ${e.instancePath || '/'}: ${e.keyword} ` +
      `${JSON.stringify(e.params)}`);
  }
  const unknown = [];
  for (const [path, obj, read] of seen) {
    if (Array.isArray(obj)) continue;
    for (const k of Object.keys(obj)) {
      if (!read.has(k)) unknown.push(`${where}: ${path}/${k}: unknown field`);
    }
  }
  return unknown;
}

/* ---- cross-references ---- */

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob']);

/* The pod templates of a render: [{owner, ns, labels, spec}]. */
function pods(objs) {
  return objs.filter((o) => WORKLOADS.has(o.kind)).map((o) => {
    const t = o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template : o.spec.template;
    return { owner: o, ns: o.metadata.namespace, labels: t.metadata?.labels || {}, spec: t.spec };
  });
}

const selects = (sel, labels) => Object.entries(sel || {}).every(([k, v]) => labels[k] === v);

function portExists(containers, port) {
  return containers.some((c) => (c.ports || []).some((p) =>
    (typeof port === 'string' ? p.name === port : p.containerPort === port)));
}

/* The problems of a render's references (pool: the objects they may refer to). */
function crossRefs(objs, pool = objs) {
  const bad = [];
  const ps = pods(pool);
  const find = (kind, ns, name) => pool.find((o) => o.kind === kind &&
    o.metadata.name === name && o.metadata.namespace === ns);
  for (const o of objs) {
    const ns = o.metadata.namespace;
    const where = `${o.kind} ${o.metadata.name}`;
    if (o.kind === 'Service' && o.spec.selector) {
      const m = ps.filter((p) => p.ns === ns && selects(o.spec.selector, p.labels));
      if (!m.length) bad.push(`${where}: its selector matches no pod`);
      for (const sp of o.spec.ports) {
        const tp = sp.targetPort ?? sp.port;
        if (m.length && !m.some((p) => portExists(p.spec.containers, tp))) {
          bad.push(`${where}: targetPort ${tp} is no port of its pods`);
        }
      }
    }
    if (o.kind === 'PodDisruptionBudget' &&
        !ps.some((p) => p.ns === ns && selects(o.spec.selector.matchLabels, p.labels))) {
      bad.push(`${where}: its selector matches no pod`);
    }
    if (o.kind === 'HorizontalPodAutoscaler' &&
        !find(o.spec.scaleTargetRef.kind, ns, o.spec.scaleTargetRef.name)) {
      bad.push(`${where}: scales ${o.spec.scaleTargetRef.name}, which is not here`);
    }
    if (o.kind === 'Ingress') {
      for (const r of o.spec.rules) {
        for (const p of r.http.paths) {
          const s = find('Service', ns, p.backend.service.name);
          if (!s) bad.push(`${where}: ${p.path}: no Service ${p.backend.service.name}`);
          else if (!s.spec.ports.some((sp) => sp.port === p.backend.service.port.number)) {
            bad.push(`${where}: ${p.path}: Service ${s.metadata.name} has no port ` +
              `${p.backend.service.port.number}`);
          }
        }
      }
    }
  }
  for (const p of pods(objs)) {
    const where = `${p.owner.kind} ${p.owner.metadata.name}`;
    const vols = new Set([...(p.spec.volumes || []).map((v) => v.name),
      ...(p.owner.spec.volumeClaimTemplates || []).map((v) => v.metadata.name)]);
    for (const c of p.spec.containers) {
      for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        const port = c[probe]?.httpGet?.port ?? c[probe]?.tcpSocket?.port;
        if (port !== undefined && !portExists([c], port)) {
          bad.push(`${where}: ${c.name}: ${probe} port ${port} is no port of the container`);
        }
      }
      for (const m of c.volumeMounts || []) {
        if (!vols.has(m.name)) bad.push(`${where}: ${c.name}: no volume ${m.name}`);
      }
      for (const e of c.env || []) {
        for (const [ref, kind] of [['secretKeyRef', 'Secret'], ['configMapKeyRef', 'ConfigMap']]) {
          const r = e.valueFrom?.[ref];
          if (!r) continue;
          const obj = find(kind, p.ns, r.name);
          const keys = obj ? { ...obj.data, ...obj.stringData } : {};
          if (!obj) bad.push(`${where}: ${c.name}: ${e.name}: no ${kind} ${r.name}`);
          else if (!(r.key in keys)) bad.push(`${where}: ${c.name}: ${e.name}: ${kind} ${r.name} has no key ${r.key}`);
        }
      }
    }
  }
  return bad;
}

/* ---- what dstmc reads ---- */

/* The environment names `dstmc SERVICE` reads, from its --help. */
const helpCache = new Map();
function envNames(service) {
  if (!helpCache.has(service)) {
    const help = execFileSync(BIN, [service, '--help'], { encoding: 'utf8' });
    const names = new Set();
    for (const m of help.matchAll(/\[env (\S+)(?: or (\S+?))?\]/g)) {
      names.add(m[1]);
      if (m[2]) names.add(m[2]);
    }
    for (const m of help.matchAll(/^\s+(DSTMC_\w+)\s.*\[environment only\]/gm)) names.add(m[1]);
    helpCache.set(service, names);
  }
  return helpCache.get(service);
}

/* A container's environment as text, its references resolved from the pool. */
function resolveEnv(c, ns, pool) {
  const env = {};
  for (const e of c.env || []) {
    if (e.value !== undefined) env[e.name] = e.value;
    const sk = e.valueFrom?.secretKeyRef;
    const ck = e.valueFrom?.configMapKeyRef;
    const o = sk || ck ? pool.find((x) => x.kind === (sk ? 'Secret' : 'ConfigMap') &&
      x.metadata.name === (sk || ck).name && x.metadata.namespace === ns) : null;
    if (sk && o && (o.stringData?.[sk.key] ?? o.data?.[sk.key]) !== undefined) {
      env[e.name] = o.stringData?.[sk.key] ??
        Buffer.from(o.data[sk.key], 'base64').toString('utf8');
    }
    if (ck && o && o.data?.[ck.key] !== undefined) env[e.name] = o.data[ck.key];
    if (e.valueFrom?.fieldRef) env[e.name] = 'speedtest-logger-7d9f8-x2x4q'; /* a pod's name */
  }
  return env;
}

/* The problems of the dstmc containers of a render. */
function dstmcEnv(objs, pool = objs) {
  const bad = [];
  for (const p of pods(objs)) {
    for (const c of p.spec.containers) {
      if (!c.command || c.command[0] !== 'dstmc') continue;
      const where = `${p.owner.kind} ${p.owner.metadata.name}: dstmc ${c.command[1]}`;
      const known = envNames(c.command[1]);
      for (const e of c.env || []) {
        if (!known.has(e.name)) bad.push(`${where}: ${e.name} is read by no option`);
      }
      const env = resolveEnv(c, p.ns, pool);
      /* Mounted paths: a fresh directory here. Listeners: their port is the container's, and
       * the check binds 127.0.0.1:0 instead (port 80 needs root here, and may be taken). */
      const here = mkdtempSync(join(tmpdir(), 'dstmc-k8s-env-'));
      for (const [k, v] of Object.entries(env)) {
        for (const m of c.volumeMounts || []) {
          if (v.startsWith(m.mountPath)) {
            mkdirSync(join(here, m.mountPath), { recursive: true });
            env[k] = join(here, v);
          }
        }
        const hp = /^0\.0\.0\.0:(\d+)$/.exec(v);
        if (hp) {
          if (!portExists([c], Number(hp[1]))) bad.push(`${where}: ${k}=${v} is no container port`);
          env[k] = '127.0.0.1:0';
        }
      }
      const r = spawnSync(BIN, [...c.command.slice(1), '--check-config'], {
        encoding: 'utf8', cwd: here, env: { PATH: process.env.PATH, ...env } });
      if (r.status !== 0) bad.push(`${where}: --check-config: ${(r.stderr || '').trim()}`);
      rmSync(here, { recursive: true, force: true });
    }
  }
  return bad;
}

/* ---- the tests ---- */

const ALL = kustomizations();
const rendered = new Map(ALL.map((rel) => [rel, render(rel)]));
/* jobs/* are applied beside an overlay: they may refer to its Secrets; so may base, which is
 * built on (the overlays add the Secret, in their namespace). */
const devSecrets = () => rendered.get('overlays/dev').filter((o) => o.kind === 'Secret');
function poolOf(rel) {
  const objs = rendered.get(rel);
  if (rel.startsWith('jobs/')) return [...objs, ...devSecrets()];
  if (rel === 'base') {
    return [...objs, ...devSecrets().map((o) => ({ ...o, metadata: { name: o.metadata.name } }))];
  }
  return objs;
}

test('every kustomization renders, and the workshop shape is there', () => {
  assert.ok(ALL.includes('base') && ALL.includes('overlays/dev'), ALL.join(' '));
  const dev = rendered.get('overlays/dev');
  const get = (kind, name) => dev.find((o) => o.kind === kind && o.metadata.name === name);
  assert.equal(get('Deployment', 'speedtest-api').spec.replicas, 2);
  assert.equal(get('Service', 'speedtest-api-service').spec.ports[0].port, 80);
  for (const [kind, name] of [['Deployment', 'speedtest-web'], ['Deployment', 'speedtest-logger'],
    ['CronJob', 'speedtest-scheduler'], ['StatefulSet', 'speedtest-redis'],
    ['StatefulSet', 'speedtest-postgres'], ['PodDisruptionBudget', 'speedtest-api'],
    ['HorizontalPodAutoscaler', 'speedtest-api'], ['Secret', 'dstmc-secrets']]) {
    assert.ok(get(kind, name), `${kind} ${name} in overlays/dev`);
  }
  const paths = get('Ingress', 'speedtest-ingress').spec.rules[0].http.paths.map((p) => p.path);
  assert.deepEqual(paths, ['/backend(/|$)(.*)', '/client(/|$)(.*)']);
  assert.equal(get('Ingress', 'speedtest-ingress').metadata.annotations[
    'nginx.ingress.kubernetes.io/rewrite-target'], '/$2');
  const daemon = rendered.get('overlays/scheduler-daemon');
  assert.ok(daemon.some((o) => o.kind === 'Deployment' && o.metadata.name === 'speedtest-scheduler'));
  assert.ok(!daemon.some((o) => o.kind === 'CronJob'));
  assert.ok(!rendered.get('overlays/external').some((o) => o.kind === 'StatefulSet'));
  assert.ok(rendered.get('jobs/logger-once').some((o) => o.kind === 'Job'));
  const api = get('Deployment', 'speedtest-api').spec.template.spec.containers[0];
  assert.equal(api.readinessProbe.httpGet.path, '/readyz');
  assert.equal(api.livenessProbe.httpGet.path, '/healthz');
  assert.equal(api.startupProbe.httpGet.path, '/healthz');
  assert.ok(api.resources.limits && api.resources.requests);
});

for (const rel of ALL) {
  test(`${rel}: every object is valid for its schema, no unknown fields`, () => {
    const objs = rendered.get(rel);
    assert.ok(objs.length > 0);
    assert.deepEqual(objs.flatMap(validate), []);
  });
  test(`${rel}: references resolve (selectors, ports, probes, Secrets, ConfigMaps)`, () => {
    assert.deepEqual(crossRefs(rendered.get(rel), poolOf(rel)), []);
  });
  test(`${rel}: dstmc reads every variable set, and --check-config accepts them`, () => {
    assert.deepEqual(dstmcEnv(rendered.get(rel), poolOf(rel)), []);
  });
}

test('a wrong field, a wrong type, a dangling reference or a misspelt variable fails', () => {
  const dev = rendered.get('overlays/dev');
  const apiDep = dev.find((o) => o.kind === 'Deployment' && o.metadata.name === 'speedtest-api');
  const mutate = (fn) => { const o = structuredClone(apiDep); fn(o); return o; };
  const c0 = (o) => o.spec.template.spec.containers[0];
  const cases = [
    [mutate((o) => { o.spec.replicaz = 2; }), /\/spec\/replicaz: unknown field/],
    [mutate((o) => { o.spce = {}; }), /\/spce: unknown field/],
    [mutate((o) => { c0(o).readinessProbe.httpGet.pathh = '/readyz'; }),
      /readinessProbe\/httpGet\/pathh: unknown field/],
    [mutate((o) => { o.spec.replicas = 'two'; }), /\/spec\/replicas: type/],
    [mutate((o) => { c0(o).ports[0].containerPort = '80'; }), /containerPort: type/],
    [mutate((o) => { delete o.spec.selector; }), /required/],
  ];
  for (const [o, want] of cases) {
    const errs = validate(o);
    assert.ok(errs.some((e) => want.test(e)), `${want}: got ${JSON.stringify(errs)}`);
  }
  assert.deepEqual(validate(apiDep), []);
  /* the same through kubectl: a manifest with a misspelt field, rendered, fails */
  const tree = mkdtempSync(join(tmpdir(), 'dstmc-k8s-bad-'));
  cpSync(K8S, tree, { recursive: true });
  const web = join(tree, 'base', 'web.yaml');
  writeFileSync(web, readFileSync(web, 'utf8').replace('containerPort: 80', 'containerPort: 80\n              hostPortt: 80'));
  const bad = render('overlays/dev', tree);
  rmSync(tree, { recursive: true, force: true });
  assert.ok(bad.flatMap(validate).some((e) => /hostPortt: unknown field/.test(e)));
  /* cross-references and the env */
  const broken = dev.map((o) => (o === apiDep ? mutate((x) => {
    c0(x).env.find((e) => e.name === 'DSTMC_DB').valueFrom.secretKeyRef.key = 'database-uri';
    c0(x).readinessProbe.httpGet.port = 'htttp';
    c0(x).env.push({ name: 'DSTMC_LISTN', value: '0.0.0.0:80' });
  }) : o));
  const refs = crossRefs(broken).join('\n');
  assert.match(refs, /DSTMC_DB: Secret dstmc-secrets has no key database-uri/);
  assert.match(refs, /readinessProbe port htttp/);
  assert.match(dstmcEnv(broken).join('\n'), /DSTMC_LISTN is read by no option/);
  const badValue = dev.map((o) => (o === apiDep ? mutate((x) => {
    c0(x).env.find((e) => e.name === 'DSTMC_THREADS').value = '0';
    c0(x).env.find((e) => e.name === 'basePath').value = 'backend';
  }) : o));
  const env = dstmcEnv(badValue).join('\n');
  assert.match(env, /--threads \(from DSTMC_THREADS\)/);
  assert.match(env, /--base-path \(from basePath\)/);
  const svcOff = dev.map((o) => (o.kind === 'Service' && o.metadata.name === 'speedtest-web-service'
    ? { ...o, spec: { ...o.spec, selector: { app: 'speedtest-wbe' } } } : o));
  assert.match(crossRefs(svcOff).join('\n'), /speedtest-web-service: its selector matches no pod/);
});
