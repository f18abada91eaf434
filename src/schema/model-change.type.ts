import { Field, ObjectType, registerEnumType } from 'type-graphql';

export enum ModelChangeKind {
  LOADED = 'LOADED',
  UNLOADED = 'UNLOADED',
  VERSION_REGISTERED = 'VERSION_REGISTERED',
}
registerEnumType(ModelChangeKind, { name: 'ModelChangeKind', description: 'What happened to a model.' });

@ObjectType({ description: 'A model loaded, unloaded, or a new version of it registered.' })
export class ModelChange {
  @Field(() => ModelChangeKind) kind!: ModelChangeKind;
  @Field() model!: string;
  @Field(() => String, { nullable: true, description: 'The version loaded or registered; for UNLOADED, the version that served (null when not known).' }) version!: string | null;
  @Field() at!: Date;
}
