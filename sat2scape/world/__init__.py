"""The built-in procedural world: paired satellite tiles and ground views of one landscape.

Real photos and satellite tiles need the internet; this world needs nothing, so it is the
default dataset that every later stage (GAN, encoder, evaluation, demo) trains and is measured
on. It stands in for summer countryside in the Yaroslavl region: crop fields and meadows, birch
and spruce forest, lakes and rivers, dirt roads, villages of wooden houses.

Where things are (each module imports only those above it):

    config.py    WorldConfig, the world's origin on the map, WORLD_VERSION
    noise.py     periodic noise textures and their lookups
    land.py      the classes, the land-cover and height field (_land, landcover_at), the world's tables
    colour.py    albedo: materials, crops and their row patterns, roofs, meadow flowers
    sky.py       shooting conditions (date, sun, sky, tilt, the satellite's pass) and the sky's colour
    tile.py      the satellite tile renderer
    view.py      the ground view renderer
    sampling.py  where each sample stands and looks (open_ground), sample, render_pair, lat/lon
    dataset.py   generate (the dataset folder) and the `world` verb of the CLI (add_arguments, run)

The world model, top to bottom:

1. **One land-cover and height field**, `_land(x, y)` in land.py, evaluable at any point in
   metres (x east, y north) and vectorised over numpy arrays (`landcover_at` is its public face).
   - Large-scale fields (forest massifs, lakes, terrain, stand type) are periodic noise
     textures made once per process by spectral synthesis, looked up at world-seeded
     rotations, scales and offsets; forests and lakes sum two lookups at incommensurate
     scales, so their pattern never repeats. Rivers and roads are narrow bands around zero
     isolines of smooth noise (their networks repeat every 6-10 km; what they cross does not).
   - The open country is cut into Voronoi cells of ~330 m. Each cell is a crop field (rows in
     one direction: green wheat, ripe grain, rapeseed, ploughed earth, potatoes, oats, clover
     hay, stubble), a meadow, an overgrown meadow with scattered birches, a copse, or a village:
     house plots along parallel streets, gardens with a few trees. Some field margins carry a
     line of trees, and river banks willows.
   - Trees are individual crowns on a jittered 5 m lattice: domes for birch and aspen, cones
     for spruce, 13-26 m tall in forests (shorter towards the edge). A wood is a solid wall of
     foliage under its crowns; a lone birch is an ellipsoid crown on a trunk. Houses are boxes
     with gable roofs, 3 m to the eaves and 5-7 m to the ridge.
   It returns a class id (`CLASS_NAMES`) and an object height per point, plus what the
   renderers need to colour it (crop, row direction, tones, water depth, crown underside).

2. **The satellite tile** (tile.py; 128 px at 1 m/px by default, north up) evaluates the field
   on a top-down grid, colours it with texture (field swaths and tramlines, crowns, roofs, water
   depth and ripples), shades it from the height map's normals under a late-morning sun, and
   casts shadows by marching the height map towards the sun. It is rendered once as the wide
   tile (`geometry.wide_tile_size`: 182 px for 128), which a model can turn to the camera's
   heading and crop (`geometry.turn_tiles`), and the tile is that render's exact centre.

3. **The ground view** (view.py) is a pinhole camera at eye height (1.7 m), 70 degrees wide,
   tilted a few degrees. Each image column marches along its ray through the same field, in steps that grow
   with distance (2 m to 3 km, ~5% apart). Each step's top (terrain + trees or houses) is
   projected to a screen row, and the nearest step whose top reaches a pixel paints it: a
   front-to-back painter, as in voxel-space terrain renderers, done for all columns at once
   with one `searchsorted`. So woods are walls with crown silhouettes and the horizon lies far
   beyond the tile's edge. Lone crowns float over the ground on their trunks and are painted
   into the same depth order separately. Ground pixels are textured at their exact ground
   point (field rows converge in perspective, grass and flowers in the foreground), water
   mirrors what stands behind it and the sky, the sky is clear, cumulus or overcast under a
   sun placed by date and time, and haze grows with distance. The class of the step that
   painted each pixel is the view's class map.

A sample is addressed by (seed, index): its place (open ground, most often near woods, water or
a village), heading and sky come from random generators seeded by both, so any sample can be
made alone, in any order, by any worker, with the same bytes.

Dataset folder written by `generate` (see DESIGN.md): `photos/<id>.jpg` (ground views),
`satellite/<id>.png` (tiles), `satellite_wide/<id>.png` (the wide tiles, north up, around the
same point), `classes/<id>.png` (the ground view's class map: a palette PNG whose pixel values
are class ids), `photos.csv`, `pairs.csv` (with the heading and the wide tile's path), and
`world.json` (the config and WORLD_VERSION).
Photos are placed over a 40 km square around 57.6 N, 39.9 E; the train/val/test split is by
3 km region cells (`manifest.region_split`), so no held-out tile overlaps a training tile (a
view's horizon may still reach into a neighbouring cell).
"""

from .config import METERS_PER_DEG_LAT, ORIGIN_LAT, ORIGIN_LON, UTC_OFFSET_H, WORLD_VERSION, WorldConfig
from .land import (CLASS_COLORS, CLASS_NAMES, CROPS, FIELD, FOREST_CONIF, FOREST_DECID, HOUSE, MEADOW, ROAD,
                   SKY, WATER, landcover_at)
from .sky import SKIES
from .sampling import from_latlon, open_ground, photo_id, render_pair, sample, to_latlon
from .dataset import add_arguments, dataset_config, generate, run
# private helpers that the tests and benchmarks/world.py reach for
from .sky import _conditions
from .sampling import _describe
from .dataset import _class_png, _encode

__all__ = [
    "WorldConfig", "WORLD_VERSION", "ORIGIN_LAT", "ORIGIN_LON", "METERS_PER_DEG_LAT", "UTC_OFFSET_H",
    "SKY", "MEADOW", "FIELD", "FOREST_DECID", "FOREST_CONIF", "WATER", "ROAD", "HOUSE",
    "CLASS_NAMES", "CLASS_COLORS", "CROPS", "SKIES",
    "landcover_at", "open_ground", "render_pair", "sample", "photo_id", "to_latlon", "from_latlon",
    "generate", "dataset_config", "add_arguments", "run",
]
