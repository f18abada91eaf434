// Head training on a frozen backbone: features, trainers, metrics, ONNX export (see docs/training.md).
export { backboneSpecOf } from '../bundle/backbone-spec.js';
export { FeatureCache, extractPooled, extractTokenStates, loadBundleBackbone, type ExtractOptions, type TokenFeatures } from './features.js';
export {
  trainClassifier,
  trainTokenClassifier,
  argmaxRows,
  classifierDefaults,
  tokenClassifierDefaults,
  type ClassifierTrainOptions,
  type CommonTrainOptions,
  type EpochStats,
  type TokenClassifierTrainOptions,
  type TrainResult,
} from './train.js';
export {
  ExampleValidationError,
  evaluateClassifier,
  predictEntities,
  tokenTags,
  trainClassificationHead,
  trainTokenClassificationHead,
  validateClassificationExamples,
  validateTokenClassificationExamples,
  type ClassificationEvaluation,
  type ClassificationExample,
  type ClassificationHeadOptions,
  type SpanEvaluation,
  type TokenClassificationExample,
  type TokenClassificationHeadOptions,
  type TrainedHead,
} from './heads.js';
export { exportClassifierOnnx, exportTokenClassifierOnnx } from './export.js';
export { accuracy, prf, spanMetrics, tokenF1, type PRF, type SpanMetrics } from './metrics.js';
export { createOnnxBackend, jsBackend, type MatMulBackend } from './linalg.js';
export { predictLogits, type HeadWeights } from './model.js';
export { createProgressBar, progressBarListener, type ProgressListener, type TrainingProgress, type TrainingPhase } from './progress.js';
