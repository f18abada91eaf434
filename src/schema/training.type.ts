import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';

export enum JobStatus {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
}
registerEnumType(JobStatus, { name: 'JobStatus' });

@InputType({ description: 'A character span (JavaScript string offsets, end exclusive) with its entity label.' })
export class EntitySpanInput {
  @Field(() => Int) start!: number;
  @Field(() => Int) end!: number;
  @Field() label!: string;
}

@InputType({ description: 'One labelled example: a label for classification, entity spans for token classification.' })
export class TrainingExampleInput {
  @Field() text!: string;
  @Field(() => String, { nullable: true }) label?: string | null;
  @Field(() => [EntitySpanInput], { nullable: true }) entities?: EntitySpanInput[] | null;
}

@InputType({ description: 'A task of a backbone fine-tuning run: a head of the model and the dataset it learns from.' })
export class FineTuneTaskInput {
  @Field({ description: 'A CLASSIFICATION head reading the pooled embedding, or a TOKEN_CLASSIFICATION head.' }) head!: string;
  @Field({ description: 'A registered dataset: pang-lee-sentence-polarity and synthetic-ner are built in; any other must hold examples in the registry (as trainHead keeps them).' })
  dataset!: string;
  @Field(() => Float, { nullable: true, description: "The task's weight in the loss (default 1)." }) weight?: number | null;
}

@ObjectType()
export class JobMetric {
  @Field() metric!: string;
  @Field(() => Float) value!: number;
  @Field() split!: string;
  @Field(() => Int) samples!: number;
}

@ObjectType({ description: 'A head being trained, or a backbone being fine-tuned, in the background: a record in the registry that every replica answers, through restarts.' })
export class TrainingJob {
  @Field(() => ID) id!: string;
  @Field() model!: string;
  @Field() head!: string;
  @Field({ description: 'classification or token_classification (trainHead), fine_tune_backbone (fineTuneBackbone).' }) task!: string;
  @Field(() => JobStatus) status!: JobStatus;
  @Field({ description: 'queued, starting, features, training, evaluation, export, done; a fine-tuning job: teacher, fine-tune, heads, done' }) phase!: string;
  @Field(() => Float, { description: 'Progress within the phase, 0 to 1.' }) progress!: number;
  @Field(() => Int, { nullable: true }) epoch!: number | null;
  @Field(() => Float, { nullable: true }) loss!: number | null;
  @Field(() => Float, { nullable: true, description: 'Best validation figure so far (accuracy or token F1).' }) validationMetric!: number | null;
  @Field(() => [JobMetric], { description: 'Final figures on the held-out examples.' }) metrics!: JobMetric[];
  @Field(() => String, { nullable: true }) error!: string | null;
  @Field(() => String, { nullable: true, description: 'The replica running it, or that ran it last: host name and process id.' }) runner!: string | null;
  @Field(() => Int, { description: 'How many times a replica started it: more than 1 when the replica running it died and another ran it again.' }) attempts!: number;
  @Field() createdAt!: Date;
  @Field(() => Date, { nullable: true, description: 'When its current (or last) run started.' }) startedAt!: Date | null;
  @Field(() => Date, { nullable: true }) finishedAt!: Date | null;
  @Field(() => String, { nullable: true, description: 'The model version registered on success.' }) version!: string | null;
}
