#include "c8/model/model.h"

#include "c8/model/decoder_model.h"
#include "c8/model/deepseek_model.h"

namespace c8 {

Result<std::unique_ptr<Model>> LoadModel(const std::string& dir, Backend& backend,
                                         const ModelLoadOptions& options, const ShardSpec& shard,
                                         Communicator* comm) {
  C8_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir));
  if (config.is_mla()) {
    C8_ASSIGN_OR_RETURN(std::unique_ptr<DeepseekModel> m,
                        DeepseekModel::Load(dir, backend, options, shard, comm));
    return std::unique_ptr<Model>(std::move(m));
  }
  C8_ASSIGN_OR_RETURN(std::unique_ptr<DecoderModel> m,
                      DecoderModel::Load(dir, backend, options, shard, comm));
  return std::unique_ptr<Model>(std::move(m));
}

}  // namespace c8
