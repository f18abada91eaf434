import { Field, Float, Int, ObjectType } from 'type-graphql';

// simpleResolvers: these plain result objects need no type-graphql resolver wrapper per field (graphql-js
// reads the property itself); a 64-text request resolves hundreds of such fields.
@ObjectType({ simpleResolvers: true })
export class LabelScore {
  @Field() label!: string;
  @Field(() => Float) score!: number;
}

@ObjectType({ description: 'The output of a classification head: the best label, its probability, and every label\'s.', simpleResolvers: true })
export class Classification {
  @Field() label!: string;
  @Field(() => Float) score!: number;
  @Field(() => [LabelScore]) scores!: LabelScore[];
}

@ObjectType({ description: 'A named entity: `text.slice(start, end) === entity.text` (JavaScript string offsets, end exclusive).', simpleResolvers: true })
export class Entity {
  @Field() text!: string;
  @Field() label!: string;
  @Field(() => Int) start!: number;
  @Field(() => Int) end!: number;
  @Field(() => Float, { description: 'Mean probability of the tags over the span.' }) score!: number;
}

@ObjectType({ description: 'A translation of one text by a sequence-to-sequence model (Marian / opus-mt).', simpleResolvers: true })
export class Translation {
  @Field() text!: string;
  @Field(() => Int, { description: 'Source tokens the model read (after truncation, end-of-sequence included).' }) sourceTokenCount!: number;
  @Field({ description: 'True when the source was longer than the model reads and was cut.' }) truncated!: boolean;
  @Field(() => Int, { description: 'Tokens generated (end-of-sequence not counted).' }) tokenCount!: number;
}

@ObjectType({ description: 'Everything asked about one text; the backbone ran once for it, and only the selected heads ran.' })
export class TextAnalysis {
  @Field() text!: string;
  @Field(() => Int, { description: 'Tokens in the text, before truncation.' }) tokenCount!: number;
  @Field({ description: 'True when the text was longer than the model reads (its maxTokens) and was cut.' }) truncated!: boolean;
  /** The model whose heads answer the fields. */
  model!: string;
}
