import { registerEnumType } from 'type-graphql';
import { TaskKind, HeadInput, VersionStatus, DatasetRole } from '../generated/prisma/enums.js';

registerEnumType(TaskKind, { name: 'TaskKind', description: 'What a head computes.' });
registerEnumType(HeadInput, { name: 'HeadInput', description: "What a head reads from the backbone: the pooled sentence embedding, the per-token states, or (GRAPH) an output of the backbone's own graph: the head inside an imported Hugging Face task model." });
registerEnumType(VersionStatus, { name: 'VersionStatus' });
registerEnumType(DatasetRole, { name: 'DatasetRole', description: 'How a head used a dataset.' });

export { TaskKind, HeadInput, VersionStatus, DatasetRole };
