-- AlterTable
ALTER TABLE "Backbone" ADD COLUMN     "hyperparameters" JSONB,
ADD COLUMN     "parentId" INTEGER,
ADD COLUMN     "validationCurves" JSONB;

-- CreateTable
CREATE TABLE "BackboneDataset" (
    "backboneId" INTEGER NOT NULL,
    "datasetId" INTEGER NOT NULL,
    "role" "DatasetRole" NOT NULL,

    CONSTRAINT "BackboneDataset_pkey" PRIMARY KEY ("backboneId","datasetId","role")
);

-- CreateIndex
CREATE INDEX "BackboneDataset_datasetId_idx" ON "BackboneDataset"("datasetId");

-- AddForeignKey
ALTER TABLE "Backbone" ADD CONSTRAINT "Backbone_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Backbone"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "BackboneDataset" ADD CONSTRAINT "BackboneDataset_backboneId_fkey" FOREIGN KEY ("backboneId") REFERENCES "Backbone"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "BackboneDataset" ADD CONSTRAINT "BackboneDataset_datasetId_fkey" FOREIGN KEY ("datasetId") REFERENCES "Dataset"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
