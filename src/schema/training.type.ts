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

@ObjectType()
export class JobMetric {
  @Field() metric!: string;
  @Field(() => Float) value!: number;
  @Field() split!: string;
  @Field(() => Int) samples!: number;
}

@ObjectType({ description: 'A head being trained in the background (kept in memory until the server restarts).' })
export class TrainingJob {
  @Field(() => ID) id!: string;
  @Field() model!: string;
  @Field() head!: string;
  @Field() task!: string;
  @Field(() => JobStatus) status!: JobStatus;
  @Field({ description: 'queued, features, training, evaluation, export, done' }) phase!: string;
  @Field(() => Float, { description: 'Progress within the phase, 0 to 1.' }) progress!: number;
  @Field(() => Int, { nullable: true }) epoch!: number | null;
  @Field(() => Float, { nullable: true }) loss!: number | null;
  @Field(() => Float, { nullable: true, description: 'Best validation figure so far (accuracy or token F1).' }) validationMetric!: number | null;
  @Field(() => [JobMetric], { description: 'Final figures on the held-out examples.' }) metrics!: JobMetric[];
  @Field(() => String, { nullable: true }) error!: string | null;
  @Field() createdAt!: Date;
  @Field(() => Date, { nullable: true }) finishedAt!: Date | null;
  @Field(() => String, { nullable: true, description: 'The model version registered on success.' }) version!: string | null;
}
