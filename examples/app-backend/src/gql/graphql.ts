/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
/** What a head computes. */
export type TaskKind =
  | 'CLASSIFICATION'
  | 'EMBEDDING'
  | 'GENERATION'
  | 'TOKEN_CLASSIFICATION';

export type ReviewAnalysisQueryVariables = Exact<{
  texts: Array<string> | string;
}>;


export type ReviewAnalysisQuery = { analyze: Array<{ text: string, truncated: boolean, embedding: Array<number>, sentiment: { label: string, score: number }, entities: Array<{ text: string, label: string, start: number, end: number }> }> };

export type ModelCatalogQueryVariables = Exact<{
  first?: number | null | undefined;
  task?: TaskKind | null | undefined;
}>;


export type ModelCatalogQuery = { models: { totalCount: number, edges: Array<{ node: { name: string, description: string | null, version: { version: string, license: string, backbone: { name: string }, heads: Array<{ name: string, task: TaskKind, labels: Array<string> }> } | null } }> }, server: { loadedModels: Array<{ name: string, version: string }> } };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}

export const ReviewAnalysisDocument = new TypedDocumentString(`
    query ReviewAnalysis($texts: [String!]!) {
  analyze(texts: $texts) {
    text
    truncated
    sentiment {
      label
      score
    }
    entities {
      text
      label
      start
      end
    }
    embedding
  }
}
    `) as unknown as TypedDocumentString<ReviewAnalysisQuery, ReviewAnalysisQueryVariables>;
export const ModelCatalogDocument = new TypedDocumentString(`
    query ModelCatalog($first: Int, $task: TaskKind) {
  models(first: $first, task: $task) {
    totalCount
    edges {
      node {
        name
        description
        version {
          version
          license
          backbone {
            name
          }
          heads {
            name
            task
            labels
          }
        }
      }
    }
  }
  server {
    loadedModels {
      name
      version
    }
  }
}
    `) as unknown as TypedDocumentString<ModelCatalogQuery, ModelCatalogQueryVariables>;