-- npc_vision.lua - a game-loop demo of the Lua module `llava`.
--
-- An NPC "looks" at a frame of the game (raw RGBA pixels, here drawn in Lua
-- as a string of bytes: sky, sun, grass, a house) and answers the player's
-- question, while the game loop keeps ticking: each tick does its game work
-- and then a few llava chat steps, so the answer streams in over the ticks
-- and the frame rate never waits for the whole reply.
--
--   lua5.4 npc_vision.lua --model model-lm.gguf --mmproj mmproj.gguf \
--       [--question "What do you see?"] [--ticks 200] [--steps 2] [--image file.png]
--
-- Defaults: the tiny test model of $LLAVA_TEST_DATA/golden/tiny-dev (random
-- weights: the words are meaningless, the mechanics are the point).
-- LUA_CPATH must find llava.so. The loop stops after --ticks ticks even if
-- the NPC is still talking (the reply is then abandoned).
local llava = require("llava")

local opts = {
  model = nil, mmproj = nil, image = nil, question = "What do you see?",
  ticks = 200, steps = 2, max_tokens = 24, threads = 0, ids = false,
}
do
  local data = os.getenv("LLAVA_TEST_DATA") or "../shared/data"
  opts.model = data .. "/golden/tiny-dev/model-lm.gguf"
  opts.mmproj = data .. "/golden/tiny-dev/model-mmproj.gguf"
  local i = 1
  while i <= #arg do
    local name = arg[i]:match("^%-%-([%w-]+)$")
    if not name then error("unexpected argument " .. arg[i]) end
    name = name:gsub("-", "_")
    if name == "ids" then
      opts.ids = true
    elseif opts[name] == nil and name ~= "image" then
      error("unknown option --" .. name)
    else
      local v = arg[i + 1] or error("--" .. name .. " needs a value")
      opts[name] = type(opts[name]) == "number" and assert(tonumber(v), "--" .. name .. " takes a number") or v
      i = i + 1
    end
    i = i + 1
  end
end

-- Draw a W x H RGBA frame: sky gradient, a sun, grass, a red house.
local function draw_frame(w, h)
  local rows = {}
  for y = 0, h - 1 do
    local px = {}
    for x = 0, w - 1 do
      local r, g, b
      if y > h * 0.7 then
        r, g, b = 40, 150 + (x * 7 + y * 3) % 30, 40                      -- grass
      else
        r, g, b = 110, 160, 255 - math.floor(100 * y / h)                 -- sky
      end
      local dx, dy = x - w * 0.8, y - h * 0.2
      if dx * dx + dy * dy < (w * 0.1) ^ 2 then r, g, b = 255, 220, 40 end -- sun
      if x > w * 0.25 and x < w * 0.55 and y > h * 0.45 and y <= h * 0.75 then
        r, g, b = 190, 30, 30                                              -- house
        if x > w * 0.37 and x < w * 0.43 and y > h * 0.6 then r, g, b = 90, 50, 20 end -- door
      end
      local roof = h * 0.45 - (w * 0.15 - math.abs(x - w * 0.4))
      if x > w * 0.25 and x < w * 0.55 and y > roof and y <= h * 0.45 then r, g, b = 120, 60, 40 end
      px[#px + 1] = string.char(r, g, b, 255)
    end
    rows[#rows + 1] = table.concat(px)
  end
  return table.concat(rows)
end

local function check(v, msg, code)
  if v == nil then
    io.stderr:write(string.format("npc_vision: %s (status %s)\n", tostring(msg), tostring(code)))
    os.exit(1)
  end
  return v
end

local params = check(llava.params({ threads = opts.threads, temperature = 0, max_tokens = opts.max_tokens,
                                    template = "llava-1.5" }))
local vision = check(llava.load_vision(opts.mmproj, params))
local proj = check(llava.load_projector(opts.mmproj, params))
local lm = check(llava.load_lm(opts.model, params))

local frame
if opts.image then
  frame = check(llava.load_image(opts.image))
else
  local W, H = 96, 64
  frame = check(llava.image_from_pixels(draw_frame(W, H), W, H, "rgba"))
end

-- The NPC's state machine, advanced a little on every tick.
local npc = { state = "idle", said = {}, ids = {} }
local chat

local function npc_update(tick)
  if npc.state == "idle" and tick == 3 then
    print(string.format("[tick %3d] player: %s", tick, opts.question))
    npc.state = "looking"
  elseif npc.state == "looking" then
    -- One blocking step: encoding a frame takes a moment (a real game would
    -- do this on a worker thread; libllava handles are per-thread objects).
    local emb = check(vision:encode(proj, frame, params))
    chat = check(lm:new_chat(params))
    check(chat:add_image(emb))
    emb:close() -- evaluated already: the chat does not need it any more
    check(chat:add_text(opts.question))
    npc.state = "talking"
    print(string.format("[tick %3d] NPC looks at the scene...", tick))
  elseif npc.state == "talking" then
    for _ = 1, opts.steps do
      local tok, piece, done = chat:step()
      check(tok, piece, done)
      if done then
        npc.state = "done"
        break
      end
      npc.ids[#npc.ids + 1] = tok
      npc.said[#npc.said + 1] = piece
    end
    print(string.format("[tick %3d] NPC: %s%s", tick, table.concat(npc.said), npc.state == "done" and "" or " ..."))
  end
end

local player_x = 0
local tick = 0
while tick < opts.ticks and npc.state ~= "done" do
  tick = tick + 1
  player_x = (player_x + 1) % 96 -- the game's own work for this tick
  npc_update(tick)
end

if npc.state ~= "done" then
  print(string.format("[tick %3d] stopped after %d ticks; the NPC was interrupted", tick, opts.ticks))
end
print("NPC says: " .. table.concat(npc.said))
if opts.ids then print("ids: " .. table.concat(npc.ids, ",")) end
if chat then chat:close() end
lm:close(); proj:close(); vision:close(); frame:close(); params:close()
