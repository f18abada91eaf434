// The Kubernetes manifests (deploy/kubernetes) and the Dockerfile, checked without a cluster or a docker daemon:
// every document validates against the Kubernetes 1.27 schemas of kubernetes-models, no field is unknown to
// them, and the probes, ports, selectors, metric and grace period agree with what the server really does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { readConfig } from '../../src/config.js';
import { packageRoot } from '../../src/paths.js';
import { PolyheadMetrics } from '../../src/server/metrics.js';

const folder = join(packageRoot, 'deploy/kubernetes');

/** Each kind the manifests use, with its model class and the type name of its TypeScript interface. */
const kinds = {
  'apps/v1/Deployment': { model: Deployment, module: 'kubernetes-models/apps/v1', type: 'IDeployment' },
  'v1/Service': { model: Service, module: 'kubernetes-models/v1', type: 'IService' },
  'v1/ConfigMap': { model: ConfigMap, module: 'kubernetes-models/v1', type: 'IConfigMap' },
  'v1/Secret': { model: Secret, module: 'kubernetes-models/v1', type: 'ISecret' },
  'policy/v1/PodDisruptionBudget': { model: PodDisruptionBudget, module: 'kubernetes-models/policy/v1', type: 'IPodDisruptionBudget' },
  'autoscaling/v2/HorizontalPodAutoscaler': { model: HorizontalPodAutoscaler, module: 'kubernetes-models/autoscaling/v2', type: 'IHorizontalPodAutoscaler' },
} as const;
type KindKey = keyof typeof kinds;

interface Manifest {
  file: string;
  key: KindKey;
  object: any;
}

function readManifests(): Manifest[] {
  const manifests: Manifest[] = [];
  // *.yaml is what `kubectl apply -f deploy/kubernetes/` applies; *.yaml.example (which it leaves out) is checked too.
  for (const file of readdirSync(folder).filter((name) => name.endsWith('.yaml') || name.endsWith('.yaml.example')).sort()) {
    for (const document of parseAllDocuments(readFileSync(join(folder, file), 'utf8'))) {
      assert.deepEqual(document.errors, [], `${file} is valid YAML`);
      const object = document.toJS();
      const key = `${object.apiVersion}/${object.kind}`;
      assert.ok(key in kinds, `${file}: ${key} has no validator here (add it to kinds)`);
      manifests.push({ file, key: key as KindKey, object });
    }
  }
  return manifests;
}

const manifests = readManifests();
const one = (key: KindKey, name?: string) => {
  const found = manifests.filter((m) => m.key === key && (!name || m.object.metadata.name === name));
  assert.equal(found.length, 1, `one ${key}${name ? ` ${name}` : ''}`);
  return found[0]!.object;
};

/**
 * kubernetes-models' validators check types, formats and required fields but let unknown fields through (a
 * misspelt `readinesProbe` would be dropped by the API server, silently, unless it validates strictly). Its
 * TypeScript interfaces come from the same OpenAPI schemas, and TypeScript rejects excess properties in an
 * object literal: each manifest is type-checked as a literal of its kind's interface.
 */
function unknownFields(list: Manifest[]): string[] {
  const fileName = join(packageRoot, 'tests/deploy/__manifests__.ts');
  const source = [
    ...new Set(list.map((m) => `import type { ${kinds[m.key].type} } from '${kinds[m.key].module}';`)),
    ...list.map((m, i) => `export const m${i}: ${kinds[m.key].type} = ${JSON.stringify(m.object, null, 1)};`),
  ].join('\n');
  // No DOM or @types: only the interfaces are needed (a third of the compile time).
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    lib: ['lib.es2022.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  host.readFile = (path) => (path === fileName ? source : readFile(path));
  host.fileExists = ((exists) => (path: string) => path === fileName || exists(path))(host.fileExists.bind(host));
  const program = ts.createProgram([fileName], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : 0;
    const index = Number(/export const m(\d+)/.exec(source.split('\n').slice(0, line + 1).reverse().find((l) => l.startsWith('export const m')) ?? '')?.[1] ?? -1);
    return `${list[index]?.file ?? '?'}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}

/** The manifests and a copy of the Deployment with a misspelt field, type-checked in one program (a few seconds). */
const misspelt = structuredClone(one('apps/v1/Deployment'));
misspelt.spec.template.spec.containers[0].readinesProbe = misspelt.spec.template.spec.containers[0].readinessProbe;
let checked: string[] | undefined;
const strictCheck = () => (checked ??= unknownFields([...manifests, { file: 'misspelt.yaml', key: 'apps/v1/Deployment', object: misspelt }]));

test('every manifest validates against the Kubernetes schemas (kubernetes-models 4.5.0, Kubernetes 1.27)', () => {
  assert.ok(manifests.length >= 7, `${manifests.length} documents`);
  for (const { file, key, object } of manifests) {
    assert.doesNotThrow(() => new kinds[key].model(object).validate(), `${file}: ${key} ${object.metadata?.name}`);
  }
});

test('the validation fails where it should: a wrong type, a missing required field, an unknown field', () => {
  const deployment = structuredClone(one('apps/v1/Deployment'));
  deployment.spec.template.spec.containers[0].ports[0].containerPort = 'four thousand';
  assert.throws(() => new Deployment(deployment).validate(), /containerPort must be integer/);
  const hpa = structuredClone(one('autoscaling/v2/HorizontalPodAutoscaler'));
  delete hpa.spec.scaleTargetRef.name;
  assert.throws(() => new HorizontalPodAutoscaler(hpa).validate(), /must have required property '?name'?/);
  const problems = strictCheck().filter((line) => line.startsWith('misspelt.yaml: '));
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(problems[0]!, /readinesProbe/);
});

test('no manifest has a field unknown to the Kubernetes schemas', { timeout: 60_000 }, () => {
  assert.deepEqual(strictCheck().filter((line) => !line.startsWith('misspelt.yaml: ')), []);
});

test("the Deployment's probes, port and grace period match the server", () => {
  const deployment = one('apps/v1/Deployment');
  const pod = deployment.spec.template.spec;
  const [container] = pod.containers;
  const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
  const settings = { ...one('v1/ConfigMap', 'polyhead-config').data, ...env };
  const config = readConfig(settings);
  const http = container.ports.find((p: any) => p.name === 'http');
  assert.equal(http.containerPort, config.port, 'the container port is the PORT the server listens on');
  assert.equal(config.host, '0.0.0.0');
  assert.deepEqual(
    { readiness: container.readinessProbe.httpGet, liveness: container.livenessProbe.httpGet, startup: container.startupProbe.httpGet },
    { readiness: { path: '/readyz', port: 'http' }, liveness: { path: '/healthz', port: 'http' }, startup: { path: '/healthz', port: 'http' } },
  );
  // /readyz gives each database check 2 s (src/server/start.ts): the probe must wait longer than that.
  assert.ok(container.readinessProbe.timeoutSeconds > 2);
  // The kubelet's SIGKILL comes terminationGracePeriodSeconds after the preStop hook starts.
  const preStop = container.lifecycle.preStop.exec.command;
  assert.equal(preStop[0], 'sleep');
  const drainSeconds = Number(preStop[1]) + config.shutdownTimeoutMs / 1000;
  assert.ok(pod.terminationGracePeriodSeconds >= drainSeconds + 5, `grace ${pod.terminationGracePeriodSeconds} s for ${drainSeconds} s of preStop and drain`);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(container.volumeMounts.find((v: any) => v.name === 'data').mountPath, config.dataDir);
  assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0);
  const references = container.envFrom.map((e: any) => e.configMapRef?.name ?? e.secretRef?.name);
  assert.deepEqual(references, ['polyhead-config', 'polyhead-secrets']);
  assert.deepEqual(Object.keys(one('v1/Secret', 'polyhead-secrets').stringData).sort(), ['DATABASE_URL', 'POLYHEAD_API_KEY']);
  const annotations = deployment.spec.template.metadata.annotations;
  assert.equal(Number(annotations['prometheus.io/port']), config.port);
  assert.equal(annotations['prometheus.io/path'], '/metrics');
});

test('the Service, PodDisruptionBudget and autoscaler select the Deployment, on the metric the server exports', async () => {
  const deployment = one('apps/v1/Deployment');
  const podLabels = deployment.spec.template.metadata.labels;
  assert.deepEqual(deployment.spec.selector.matchLabels, podLabels);
  const selects = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => podLabels[k] === v);
  const service = one('v1/Service');
  assert.ok(selects(service.spec.selector), 'the Service selects the pods');
  assert.equal(service.spec.ports[0].targetPort, 'http');
  assert.ok(selects(one('policy/v1/PodDisruptionBudget').spec.selector.matchLabels), 'the budget covers the pods');
  const hpa = one('autoscaling/v2/HorizontalPodAutoscaler');
  assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
  // A drain that takes the budget's replicas still leaves some serving, however far the autoscaler scaled down.
  assert.ok(hpa.spec.minReplicas > one('policy/v1/PodDisruptionBudget').spec.maxUnavailable);
  const [metric] = hpa.spec.metrics;
  assert.equal(metric.type, 'Pods');
  // The metric really is one the server exports at /metrics, a gauge (a queue depth, not a counter's total).
  const exported = new PolyheadMetrics({ version: 'test', provider: () => 'cpu', device: () => 'cpu' }).registry.getSingleMetric(metric.pods.metric.name);
  assert.ok(exported, `${metric.pods.metric.name} is exported by src/server/metrics.ts`);
  assert.equal((await exported.get()).type, 'gauge');
  const adapter = one('v1/ConfigMap', 'prometheus-adapter');
  const rules = parseAllDocuments(adapter.data['config.yaml'])[0]!.toJS().rules;
  assert.ok(rules.some((r: any) => r.seriesQuery.startsWith(`${metric.pods.metric.name}{`) && r.name.as === metric.pods.metric.name), 'prometheus-adapter serves the metric under that name');
});

test('the Dockerfile builds with npm ci and runs the server as npm start does, as a non-root user', () => {
  const dockerfile = readFileSync(join(packageRoot, 'Dockerfile'), 'utf8');
  const instructions = dockerfile.split('\n').filter((line) => /^[A-Z]+ /.test(line));
  const stages = instructions.filter((line) => line.startsWith('FROM '));
  const engines = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).engines.node as string;
  for (const stage of stages) {
    const [, major, minor] = /node:(\d+)\.(\d+)/.exec(stage) ?? [];
    assert.ok(major && engines.includes(`^${major}.`) && Number(minor) >= Number(new RegExp(`\\^${major}\\.(\\d+)`).exec(engines)![1]), `${stage} satisfies engines ${engines}`);
  }
  assert.ok(instructions.some((line) => /^RUN .*\bnpm ci\b/.test(line)), 'npm ci');
  const user = instructions.filter((line) => line.startsWith('USER ')).at(-1);
  assert.ok(user && !/\broot\b|\b0\b/.test(user), `runs as ${user}`);
  const start = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).scripts.start as string;
  const cmd = JSON.parse(instructions.find((line) => line.startsWith('CMD '))!.slice(4)) as string[];
  assert.equal(cmd.join(' '), start, 'CMD is what npm start runs');
  assert.ok(instructions.includes('EXPOSE 4000'));
  const ignored = readFileSync(join(packageRoot, '.dockerignore'), 'utf8').split('\n');
  for (const path of ['node_modules', 'dist', '.polyhead', '.git']) assert.ok(ignored.includes(path), `.dockerignore leaves out ${path}`);
});
