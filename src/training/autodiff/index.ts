// Gradients through an ONNX graph, run in onnxruntime (see docs/gradients.md).
export { DifferentiableGraph, type DifferentiableGraphOptions, type Gradient, type IntermediatesMode, type Param } from './differentiable-graph.js';
export { UnsupportedGradientError } from './builder.js';
export { supportedOps } from './ops/registry.js';
