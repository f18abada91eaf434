-- CreateEnum
CREATE TYPE "TaskKind" AS ENUM ('CLASSIFICATION', 'TOKEN_CLASSIFICATION', 'EMBEDDING', 'GENERATION');

-- CreateEnum
CREATE TYPE "HeadInput" AS ENUM ('POOLED', 'TOKENS');

-- CreateEnum
CREATE TYPE "VersionStatus" AS ENUM ('REGISTERED', 'READY', 'FAILED', 'ARCHIVED');

-- CreateEnum
CREATE TYPE "DatasetRole" AS ENUM ('TRAINING', 'VALIDATION', 'EVALUATION');

-- CreateTable
CREATE TABLE "Backbone" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "version" TEXT NOT NULL,
    "architecture" TEXT NOT NULL,
    "hiddenSize" INTEGER NOT NULL,
    "vocabSize" INTEGER NOT NULL,
    "maxTokens" INTEGER NOT NULL,
    "layers" INTEGER,
    "pooling" TEXT NOT NULL,
    "sourceName" TEXT NOT NULL,
    "sourceVersion" TEXT,
    "sourceUrl" TEXT,
    "citation" TEXT,
    "license" TEXT NOT NULL,
    "fileSha256" TEXT NOT NULL,
    "tokenizerSha256" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Backbone_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Model" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Model_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ModelVersion" (
    "id" SERIAL NOT NULL,
    "modelId" INTEGER NOT NULL,
    "version" TEXT NOT NULL,
    "status" "VersionStatus" NOT NULL DEFAULT 'REGISTERED',
    "description" TEXT,
    "license" TEXT NOT NULL,
    "bundlePath" TEXT NOT NULL,
    "manifestSha256" TEXT NOT NULL,
    "backboneId" INTEGER NOT NULL,
    "parentId" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ModelVersion_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ModelAlias" (
    "modelId" INTEGER NOT NULL,
    "alias" TEXT NOT NULL,
    "versionId" INTEGER NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ModelAlias_pkey" PRIMARY KEY ("modelId","alias")
);

-- CreateTable
CREATE TABLE "BundleFile" (
    "id" SERIAL NOT NULL,
    "versionId" INTEGER NOT NULL,
    "path" TEXT NOT NULL,
    "sha256" TEXT NOT NULL,
    "sizeBytes" INTEGER NOT NULL,

    CONSTRAINT "BundleFile_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LabelSet" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "labels" TEXT[],

    CONSTRAINT "LabelSet_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Head" (
    "id" SERIAL NOT NULL,
    "versionId" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "task" "TaskKind" NOT NULL,
    "reads" "HeadInput" NOT NULL,
    "file" TEXT,
    "fileSha256" TEXT,
    "description" TEXT,
    "backboneId" INTEGER NOT NULL,
    "labelSetId" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Head_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Dataset" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "source" TEXT NOT NULL,
    "license" TEXT NOT NULL,
    "size" INTEGER NOT NULL,
    "splits" JSONB NOT NULL,
    "description" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Dataset_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "HeadDataset" (
    "headId" INTEGER NOT NULL,
    "datasetId" INTEGER NOT NULL,
    "role" "DatasetRole" NOT NULL,

    CONSTRAINT "HeadDataset_pkey" PRIMARY KEY ("headId","datasetId","role")
);

-- CreateTable
CREATE TABLE "Evaluation" (
    "id" SERIAL NOT NULL,
    "headId" INTEGER NOT NULL,
    "datasetId" INTEGER NOT NULL,
    "split" TEXT NOT NULL,
    "metric" TEXT NOT NULL,
    "value" DOUBLE PRECISION NOT NULL,
    "sampleCount" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Evaluation_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Backbone_name_version_key" ON "Backbone"("name", "version");

-- CreateIndex
CREATE UNIQUE INDEX "Model_name_key" ON "Model"("name");

-- CreateIndex
CREATE INDEX "ModelVersion_backboneId_idx" ON "ModelVersion"("backboneId");

-- CreateIndex
CREATE UNIQUE INDEX "ModelVersion_modelId_version_key" ON "ModelVersion"("modelId", "version");

-- CreateIndex
CREATE INDEX "ModelAlias_versionId_idx" ON "ModelAlias"("versionId");

-- CreateIndex
CREATE UNIQUE INDEX "BundleFile_versionId_path_key" ON "BundleFile"("versionId", "path");

-- CreateIndex
CREATE UNIQUE INDEX "LabelSet_name_key" ON "LabelSet"("name");

-- CreateIndex
CREATE INDEX "Head_backboneId_idx" ON "Head"("backboneId");

-- CreateIndex
CREATE INDEX "Head_labelSetId_idx" ON "Head"("labelSetId");

-- CreateIndex
CREATE UNIQUE INDEX "Head_versionId_name_key" ON "Head"("versionId", "name");

-- CreateIndex
CREATE UNIQUE INDEX "Dataset_name_key" ON "Dataset"("name");

-- CreateIndex
CREATE INDEX "HeadDataset_datasetId_idx" ON "HeadDataset"("datasetId");

-- CreateIndex
CREATE INDEX "Evaluation_headId_idx" ON "Evaluation"("headId");

-- CreateIndex
CREATE INDEX "Evaluation_datasetId_idx" ON "Evaluation"("datasetId");

-- AddForeignKey
ALTER TABLE "ModelVersion" ADD CONSTRAINT "ModelVersion_modelId_fkey" FOREIGN KEY ("modelId") REFERENCES "Model"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ModelVersion" ADD CONSTRAINT "ModelVersion_backboneId_fkey" FOREIGN KEY ("backboneId") REFERENCES "Backbone"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ModelVersion" ADD CONSTRAINT "ModelVersion_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "ModelVersion"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ModelAlias" ADD CONSTRAINT "ModelAlias_modelId_fkey" FOREIGN KEY ("modelId") REFERENCES "Model"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ModelAlias" ADD CONSTRAINT "ModelAlias_versionId_fkey" FOREIGN KEY ("versionId") REFERENCES "ModelVersion"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "BundleFile" ADD CONSTRAINT "BundleFile_versionId_fkey" FOREIGN KEY ("versionId") REFERENCES "ModelVersion"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Head" ADD CONSTRAINT "Head_versionId_fkey" FOREIGN KEY ("versionId") REFERENCES "ModelVersion"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Head" ADD CONSTRAINT "Head_backboneId_fkey" FOREIGN KEY ("backboneId") REFERENCES "Backbone"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Head" ADD CONSTRAINT "Head_labelSetId_fkey" FOREIGN KEY ("labelSetId") REFERENCES "LabelSet"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "HeadDataset" ADD CONSTRAINT "HeadDataset_headId_fkey" FOREIGN KEY ("headId") REFERENCES "Head"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "HeadDataset" ADD CONSTRAINT "HeadDataset_datasetId_fkey" FOREIGN KEY ("datasetId") REFERENCES "Dataset"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Evaluation" ADD CONSTRAINT "Evaluation_headId_fkey" FOREIGN KEY ("headId") REFERENCES "Head"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Evaluation" ADD CONSTRAINT "Evaluation_datasetId_fkey" FOREIGN KEY ("datasetId") REFERENCES "Dataset"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
